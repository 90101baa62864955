/**
 * A whitelisting Python unpickler (protocols 0 to 5) that never runs anything. Globals are
 * inert names; REDUCE may only call the constructors in an explicit table (containers here,
 * tensor rebuilders from `torch_pickle.ts`). Class instances made by NEWOBJ, INST/OBJ or
 * `copyreg._reconstructor` become {@link PyObject} records holding their class name and state.
 * Any other call, `posix.system` for one, is refused with an error that names it.
 *
 * Python values map to: None → null, bool → boolean, int → number (bigint past 2^53),
 * float → number, str → string, bytes → Uint8Array, list and tuple → Array, dict and
 * OrderedDict → Map, set → Set.
 *
 * Errors are plain `Error`s with one-line messages; callers add the file name.
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // pickle.dumps({"a": (1, 2.5)}, protocol=2)
 * const bytes = new Uint8Array([128, 2, 125, 113, 0, 88, 1, 0, 0, 0, 97, 113, 1, 75, 1, 71, 64, 4, 0, 0, 0, 0, 0, 0, 134, 113, 2, 115, 46]);
 * console.log(unpickle(bytes)); // Map(1) { "a" => [ 1, 2.5 ] }
 * ```
 * @module
 */

/** A reference to a Python global (`module.name`); pushed by GLOBAL, never imported. */
export class PyGlobal {
  /** `module` and `name` exactly as the pickle spells them. */
  constructor(readonly module: string, readonly name: string) {}

  /** `module.name`. */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An inert instance of a class the unpickler does not construct: its class and saved state. */
export class PyObject {
  /** Items added by SETITEMS (instances of dict subclasses). */
  readonly items = new Map<unknown, unknown>();
  /** Items added by APPENDS (instances of list subclasses). */
  readonly listItems: unknown[] = [];
  /** What BUILD set (usually the instance `__dict__` as a Map), or undefined. */
  state: unknown = undefined;

  /** `cls` is the class global, `args` what its constructor would have received. */
  constructor(readonly cls: PyGlobal, readonly args: unknown[]) {}

  /** `module.Class`. */
  get className(): string {
    return this.cls.qualifiedName;
  }

  /** The attribute `name` of the saved `__dict__`, if any. */
  attr(name: string): unknown {
    return this.state instanceof Map ? this.state.get(name) : undefined;
  }
}

/** A callable REDUCE may invoke: receives the argument tuple. */
export type PyCallable = (args: unknown[]) => unknown;

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** Extra callables by `module.name`, added to the built-in container constructors. */
  callables?: Readonly<Record<string, PyCallable>>;
  /** Resolves persistent ids (PERSID / BINPERSID); without it they are an error. */
  persistentLoad?: (pid: unknown) => unknown;
}

/**
 * Raised when a pickle calls a global that is not whitelisted.
 *
 * @example
 * ```ts
 * import { ForbiddenGlobalError } from "./pickle.ts";
 * console.log(new ForbiddenGlobalError("posix.system").globalName); // posix.system
 * ```
 */
export class ForbiddenGlobalError extends Error {
  /** Error name. */
  override name = "ForbiddenGlobalError";

  /** `globalName` is the `module.name` the pickle tried to call. */
  constructor(readonly globalName: string) {
    super(
      `the pickle calls ${globalName}, which is not allowed (only tensor and container ` +
        `constructors may run; nothing else is executed)`,
    );
  }
}

function builtinCallables(): Record<string, PyCallable> {
  const orderedDict: PyCallable = (args) => {
    const m = new Map<unknown, unknown>();
    if (args.length > 0 && args[0] != null) {
      const src = args[0];
      if (src instanceof Map) { for (const [k, v] of src) m.set(k, v); }
      else if (Array.isArray(src)) { for (const pair of src) m.set(asArray(pair)[0], asArray(pair)[1]); }
      else throw new Error("OrderedDict() called with an argument that is neither a dict nor a list");
    }
    return m;
  };
  const set: PyCallable = (args) => new Set(args.length > 0 ? iterableItems(args[0]) : []);
  const reconstructor: PyCallable = (args) => {
    // copyreg._reconstructor(cls, base, state): object.__new__(cls), nothing run.
    const cls = args[0];
    if (!(cls instanceof PyGlobal)) throw new Error("copyreg._reconstructor called without a class");
    return new PyObject(cls, []);
  };
  const codecsEncode: PyCallable = (args) => {
    // Protocol 2 spells Python 3 bytes as _codecs.encode(text, "latin1").
    const [text, encoding] = args;
    if (typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
      throw new Error(`_codecs.encode is only allowed with "latin1", got ${shortRepr(encoding)}`);
    }
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
    return out;
  };
  const numpyScalar: PyCallable = (args) => numpyScalarValue(args[0], args[1]);
  const numpyDtype: PyCallable = (args) => {
    if (typeof args[0] !== "string") throw new Error(`numpy.dtype called with ${shortRepr(args[0])}`);
    return new NumpyDType(args[0]);
  };
  return {
    "collections.OrderedDict": orderedDict,
    "builtins.set": set,
    "__builtin__.set": set,
    "builtins.frozenset": set,
    "__builtin__.frozenset": set,
    "copyreg._reconstructor": reconstructor,
    "copy_reg._reconstructor": reconstructor,
    "_codecs.encode": codecsEncode,
    "numpy.core.multiarray.scalar": numpyScalar,
    "numpy._core.multiarray.scalar": numpyScalar,
    "numpy.dtype": numpyDtype,
  };
}

/** numpy.dtype("f8", ...) record; BUILD sets its byte order. */
class NumpyDType {
  byteOrder = "<";
  constructor(readonly code: string) {}
}

function numpyScalarValue(dtype: unknown, raw: unknown): number | boolean {
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array)) {
    throw new Error("numpy scalar without a dtype and bytes");
  }
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = dtype.byteOrder !== ">";
  const need = (n: number) => {
    if (raw.length < n) throw new Error(`numpy scalar of dtype ${dtype.code} has ${raw.length} bytes`);
  };
  switch (dtype.code) {
    case "f8":
      need(8);
      return v.getFloat64(0, le);
    case "f4":
      need(4);
      return v.getFloat32(0, le);
    case "f2":
      need(2);
      return halfToNumber(v.getUint16(0, le));
    case "i8":
      need(8);
      return Number(v.getBigInt64(0, le));
    case "u8":
      need(8);
      return Number(v.getBigUint64(0, le));
    case "i4":
      need(4);
      return v.getInt32(0, le);
    case "u4":
      need(4);
      return v.getUint32(0, le);
    case "i2":
      need(2);
      return v.getInt16(0, le);
    case "u2":
      need(2);
      return v.getUint16(0, le);
    case "i1":
      need(1);
      return v.getInt8(0);
    case "u1":
      need(1);
      return v.getUint8(0);
    case "b1":
      need(1);
      return v.getUint8(0) !== 0;
    default:
      throw new Error(`numpy scalars of dtype ${dtype.code} are not supported`);
  }
}

/**
 * IEEE half-precision bits to a number.
 *
 * @example
 * ```ts
 * import { halfToNumber } from "./pickle.ts";
 * console.log(halfToNumber(0x3c00), halfToNumber(0xc000)); // 1 -2
 * ```
 */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function asArray(x: unknown): unknown[] {
  if (!Array.isArray(x)) throw new Error("expected a tuple");
  return x;
}

function iterableItems(x: unknown): unknown[] {
  if (Array.isArray(x)) return x;
  if (x instanceof Set) return [...x];
  throw new Error("set() called with an argument that is not a list");
}

const MARK = Symbol("mark");

/**
 * Limits that keep a hostile pickle from exhausting memory or time: the unpickler itself is
 * iterative (no recursion), and every opcode's work is charged to a budget proportional to the
 * file, so a few hundred bytes can never make it copy gigabytes.
 *
 * @example
 * ```ts
 * import { PICKLE_LIMITS } from "./pickle.ts";
 * console.log(PICKLE_LIMITS.maxMemo); // 262144
 * ```
 */
export const PICKLE_LIMITS = {
  /** Memo entries (a state dict needs about 8 per tensor: 32768 tensors fit). */
  maxMemo: 1 << 18,
  /** Values on the stack at once. */
  maxStack: 1 << 22,
  /** Bytes of one LONG1/LONG4 integer or digits of a text integer. */
  maxLongBytes: 1024,
  /** Elements copied or visited in all, per byte of pickle (plus {@link PICKLE_LIMITS.workSlack}). */
  workPerByte: 16,
  /** Work allowed on top of `workPerByte` per byte. */
  workSlack: 1 << 20,
} as const;

/**
 * A short, bounded description of any unpickled value, for error messages: never walks more
 * than a few dozen nodes, so shared subtrees and cycles cannot make it explode.
 *
 * @example
 * ```ts
 * import { shortRepr } from "./pickle.ts";
 * const a: unknown[] = [1, "x"];
 * a.push(a);
 * console.log(shortRepr(a)); // [1, "x", [...]]
 * ```
 */
export function shortRepr(x: unknown, maxChars = 80): string {
  let budget = 40;
  const seen = new Set<unknown>();
  const go = (v: unknown, depth: number): string => {
    if (--budget < 0) return "...";
    if (v === null || v === undefined) return "None";
    if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
    if (v instanceof PyGlobal) return v.qualifiedName;
    if (v instanceof PyObject) return `<${v.className} object>`;
    if (v instanceof Uint8Array) return `<${v.length} bytes>`;
    if (typeof v !== "object") return typeof v;
    if (seen.has(v) || depth > 3) return Array.isArray(v) ? "[...]" : "{...}";
    seen.add(v);
    if (Array.isArray(v)) {
      return `[${v.slice(0, 6).map((e) => go(e, depth + 1)).join(", ")}${v.length > 6 ? ", ..." : ""}]`;
    }
    if (v instanceof Map) {
      const parts = [...v.entries()].slice(0, 6).map(([k, e]) => `${go(k, depth + 1)}: ${go(e, depth + 1)}`);
      return `{${parts.join(", ")}${v.size > 6 ? ", ..." : ""}}`;
    }
    if (v instanceof Set) return `<set of ${v.size}>`;
    return `<${(v as object).constructor?.name ?? "object"}>`;
  };
  const s = go(x, 0);
  return s.length > maxChars ? s.slice(0, maxChars) + "..." : s;
}

/**
 * Unpickles the first pickle in `bytes` (stops at STOP; trailing bytes are ignored).
 *
 * @example
 * ```ts
 * import { unpickle } from "./pickle.ts";
 * // pickle.dumps([None, True, "hi"], protocol=4) without its FRAME
 * const bytes = new Uint8Array([128, 4, 93, 148, 40, 78, 136, 140, 2, 104, 105, 148, 101, 46]);
 * console.log(unpickle(bytes)); // [ null, true, "hi" ]
 * ```
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  return new Unpickler(bytes, { ...builtinCallables(), ...options.callables }, options.persistentLoad).run();
}

class Unpickler {
  #pos = 0;
  #stack: unknown[] = [];
  #marks: number[] = [];
  #memo = new Map<number, unknown>();
  #work = 0;
  readonly #workLimit: number;
  readonly #view: DataView;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(
    readonly bytes: Uint8Array,
    readonly callables: Record<string, PyCallable>,
    readonly persistentLoad?: (pid: unknown) => unknown,
  ) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#workLimit = PICKLE_LIMITS.workPerByte * bytes.length + PICKLE_LIMITS.workSlack;
  }

  /** Charges `n` units of work (elements copied or visited); refuses a pickle that needs too many. */
  charge(n: number): void {
    this.#work += n;
    if (this.#work > this.#workLimit) {
      throw new Error(
        `the pickle needs more than ${this.#workLimit} element copies for ${this.bytes.length} bytes ` +
          `(a decompression bomb or a damaged file); refused`,
      );
    }
  }

  run(): unknown {
    for (;;) {
      if (this.#pos >= this.bytes.length) {
        throw new Error(`the pickle ends without a STOP opcode (truncated)`);
      }
      const at = this.#pos;
      const op = this.bytes[this.#pos++];
      if (this.#stack.length > PICKLE_LIMITS.maxStack) {
        throw new Error(
          `the pickle stack holds more than ${PICKLE_LIMITS.maxStack} values at byte ${at}; refused`,
        );
      }
      if (op === 0x2e) { // STOP
        if (this.#stack.length === 0) {
          throw new Error(`STOP with an empty stack at byte ${at} (corrupt pickle)`);
        }
        return this.#pop(at);
      }
      this.#step(op, at);
    }
  }

  #step(op: number, at: number): void {
    const s = this.#stack;
    switch (op) {
      case 0x80: // PROTO
        if (this.#u8() > 5) throw new Error(`pickle protocol ${this.bytes[at + 1]} is newer than 5`);
        return;
      case 0x95: // FRAME: only a length hint
        this.#take(8);
        return;
      case 0x28: // MARK
        this.#marks.push(s.length);
        s.push(MARK);
        return;
      case 0x30: // POP
        if (s.at(-1) === MARK) this.#popMark(at);
        else this.#pop(at);
        return;
      case 0x31: // POP_MARK
        this.#popMark(at);
        return;
      case 0x32: // DUP
        s.push(this.#top(at));
        return;
      case 0x4e: // NONE
        s.push(null);
        return;
      case 0x88: // NEWTRUE
        s.push(true);
        return;
      case 0x89: // NEWFALSE
        s.push(false);
        return;
      case 0x4a: // BININT
        s.push(this.#view.getInt32(this.#advance(4), true));
        return;
      case 0x4b: // BININT1
        s.push(this.#u8());
        return;
      case 0x4d: // BININT2
        s.push(this.#view.getUint16(this.#advance(2), true));
        return;
      case 0x8a: // LONG1
        s.push(decodeLong(this.#take(this.#u8())));
        return;
      case 0x8b: { // LONG4
        const n = this.#len32();
        if (n > PICKLE_LIMITS.maxLongBytes) {
          throw new Error(
            `an integer of ${n} bytes at byte ${at} (at most ${PICKLE_LIMITS.maxLongBytes}); refused`,
          );
        }
        s.push(decodeLong(this.#take(n)));
        return;
      }
      case 0x47: // BINFLOAT (big-endian)
        s.push(this.#view.getFloat64(this.#advance(8), false));
        return;
      case 0x49: { // INT (text; "01"/"00" are True/False)
        const t = this.#line();
        s.push(t === "01" ? true : t === "00" ? false : parseIntText(t, at));
        return;
      }
      case 0x4c: // LONG (text)
        s.push(parseIntText(this.#line().replace(/L$/, ""), at));
        return;
      case 0x46: { // FLOAT (text)
        const x = Number(this.#line());
        if (Number.isNaN(x)) throw new Error(`bad FLOAT at byte ${at} (corrupt pickle)`);
        s.push(x);
        return;
      }
      case 0x58: // BINUNICODE
        s.push(this.#text(this.#take(this.#len32()), at));
        return;
      case 0x8c: // SHORT_BINUNICODE
        s.push(this.#text(this.#take(this.#u8()), at));
        return;
      case 0x8d: // BINUNICODE8
        s.push(this.#text(this.#take(this.#len64()), at));
        return;
      case 0x56: // UNICODE (raw-unicode-escape text)
        s.push(
          this.#line().replace(
            /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
            (_, h4, h8) => String.fromCodePoint(parseInt(h4 ?? h8, 16)),
          ),
        );
        return;
      case 0x53: // STRING (quoted repr)
        s.push(unquote(this.#line(), at));
        return;
      case 0x54: // BINSTRING: Python 2 str, read as latin-1 text
        s.push(latin1(this.#take(this.#len32())));
        return;
      case 0x55: // SHORT_BINSTRING
        s.push(latin1(this.#take(this.#u8())));
        return;
      case 0x42: // BINBYTES
        s.push(this.#take(this.#len32()).slice());
        return;
      case 0x43: // SHORT_BINBYTES
        s.push(this.#take(this.#u8()).slice());
        return;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        s.push(this.#take(this.#len64()).slice());
        return;
      case 0x97: // NEXT_BUFFER
        throw new Error(
          `the pickle uses out-of-band buffers (protocol 5 NEXT_BUFFER), which a file cannot hold`,
        );
      case 0x98: // READONLY_BUFFER
        return;
      case 0x29: // EMPTY_TUPLE
        s.push([]);
        return;
      case 0x85: // TUPLE1
        s.push([this.#pop(at)]);
        return;
      case 0x86: { // TUPLE2
        const b = this.#pop(at);
        s.push([this.#pop(at), b]);
        return;
      }
      case 0x87: { // TUPLE3
        const c = this.#pop(at);
        const b = this.#pop(at);
        s.push([this.#pop(at), b, c]);
        return;
      }
      case 0x74: // TUPLE
      case 0x6c: // LIST
        s.push(this.#popMark(at));
        return;
      case 0x5d: // EMPTY_LIST
        s.push([]);
        return;
      case 0x7d: // EMPTY_DICT
        s.push(new Map());
        return;
      case 0x64: { // DICT
        const items = this.#popMark(at);
        const m = new Map<unknown, unknown>();
        for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
        s.push(m);
        return;
      }
      case 0x8f: // EMPTY_SET
        s.push(new Set());
        return;
      case 0x91: // FROZENSET
        s.push(new Set(this.#popMark(at)));
        return;
      case 0x61: { // APPEND
        const v = this.#pop(at);
        this.#appendTo(this.#top(at), [v], at);
        return;
      }
      case 0x65: { // APPENDS
        const items = this.#popMark(at);
        this.#appendTo(this.#top(at), items, at);
        return;
      }
      case 0x90: { // ADDITEMS
        const items = this.#popMark(at);
        const target = this.#top(at);
        if (!(target instanceof Set)) throw new Error(`ADDITEMS on a non-set at byte ${at} (corrupt pickle)`);
        for (const x of items) target.add(x);
        return;
      }
      case 0x73: { // SETITEM
        const v = this.#pop(at);
        const k = this.#pop(at);
        this.#setItems(this.#top(at), [k, v], at);
        return;
      }
      case 0x75: { // SETITEMS
        const items = this.#popMark(at);
        this.#setItems(this.#top(at), items, at);
        return;
      }
      case 0x67: // GET
        s.push(this.#memoGet(parseIntText(this.#line(), at), at));
        return;
      case 0x68: // BINGET
        s.push(this.#memoGet(this.#u8(), at));
        return;
      case 0x6a: // LONG_BINGET
        s.push(this.#memoGet(this.#view.getUint32(this.#advance(4), true), at));
        return;
      case 0x70: // PUT
        this.#memoPut(Number(parseIntText(this.#line(), at)), at);
        return;
      case 0x71: // BINPUT
        this.#memoPut(this.#u8(), at);
        return;
      case 0x72: // LONG_BINPUT
        this.#memoPut(this.#view.getUint32(this.#advance(4), true), at);
        return;
      case 0x94: // MEMOIZE
        this.#memoPut(this.#memo.size, at);
        return;
      case 0x63: { // GLOBAL
        const module = this.#name(at);
        s.push(new PyGlobal(module, this.#name(at)));
        return;
      }
      case 0x93: { // STACK_GLOBAL
        const name = this.#pop(at);
        const module = this.#pop(at);
        if (typeof module !== "string" || typeof name !== "string") {
          throw new Error(`STACK_GLOBAL without two strings at byte ${at} (corrupt pickle)`);
        }
        if (module.length > MAX_NAME || name.length > MAX_NAME) {
          throw new Error(`a global name of more than ${MAX_NAME} characters at byte ${at} (corrupt pickle)`);
        }
        s.push(new PyGlobal(module, name));
        return;
      }
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        throw new Error(
          `the pickle uses the copyreg extension registry (opcode at byte ${at}), not supported`,
        );
      case 0x52: { // REDUCE
        const args = this.#pop(at);
        const fn = this.#pop(at);
        s.push(this.#call(fn, args, at));
        return;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args), kept inert
        const args = this.#pop(at);
        s.push(this.#newObject(this.#pop(at), args, at));
        return;
      }
      case 0x92: { // NEWOBJ_EX
        this.#pop(at); // kwargs
        const args = this.#pop(at);
        s.push(this.#newObject(this.#pop(at), args, at));
        return;
      }
      case 0x69: { // INST (protocol 0): class from the text, args from the mark
        const module = this.#name(at);
        const cls = new PyGlobal(module, this.#name(at));
        s.push(this.#newObject(cls, this.#popMark(at), at));
        return;
      }
      case 0x6f: { // OBJ (protocol 1): class is the first item after the mark
        const [cls, ...args] = this.#popMark(at);
        s.push(this.#newObject(cls, args, at));
        return;
      }
      case 0x62: { // BUILD
        const state = this.#pop(at);
        this.#build(this.#top(at), state);
        return;
      }
      case 0x51: // BINPERSID
        s.push(this.#persistent(this.#pop(at)));
        return;
      case 0x50: // PERSID
        s.push(this.#persistent(this.#line()));
        return;
      default:
        throw new Error(
          `unknown opcode 0x${op.toString(16).padStart(2, "0")} at byte ${at} (corrupt pickle)`,
        );
    }
  }

  #call(fn: unknown, args: unknown, at: number): unknown {
    if (!(fn instanceof PyGlobal)) throw new Error(`REDUCE on a value that is not a global at byte ${at}`);
    const f = this.callables[fn.qualifiedName];
    if (!f) throw new ForbiddenGlobalError(fn.qualifiedName);
    if (!Array.isArray(args)) throw new Error(`${fn.qualifiedName} called without an argument tuple`);
    this.charge(1 + args.length + copiedSize(args[0]));
    return f(args);
  }

  #newObject(cls: unknown, args: unknown, at: number): unknown {
    if (!(cls instanceof PyGlobal)) throw new Error(`NEWOBJ on a value that is not a class at byte ${at}`);
    const a = Array.isArray(args) ? args : [];
    // Whitelisted container types are built for real (OrderedDict, set); all else stays inert.
    const ctor = CONTAINER_TYPES.has(cls.qualifiedName) ? this.callables[cls.qualifiedName] : undefined;
    this.charge(1 + a.length + (ctor ? copiedSize(a[0]) : 0));
    return ctor ? ctor(a) : new PyObject(cls, a);
  }

  #build(target: unknown, state: unknown): void {
    if (target instanceof PyObject) {
      // (dict, slots) pairs come from classes with __slots__; merge both into one Map.
      if (Array.isArray(state) && state.length === 2 && (state[0] instanceof Map || state[0] === null)) {
        this.charge(1 + copiedSize(state[0]) + copiedSize(state[1]));
        const merged = new Map(state[0] ?? []);
        if (state[1] instanceof Map) { for (const [k, v] of state[1]) merged.set(k, v); }
        target.state = merged;
      } else target.state = state;
    } else if (target instanceof NumpyDType) {
      if (Array.isArray(state) && typeof state[1] === "string") target.byteOrder = state[1];
    }
    // Other targets (an OrderedDict's _metadata, a tensor's Python attributes) are ignored.
  }

  #persistent(pid: unknown): unknown {
    if (!this.persistentLoad) {
      throw new Error("the pickle refers to external data (persistent id), not allowed here");
    }
    return this.persistentLoad(pid);
  }

  #appendTo(target: unknown, items: unknown[], at: number): void {
    const list = Array.isArray(target) ? target : target instanceof PyObject ? target.listItems : undefined;
    if (!list) throw new Error(`APPEND on a non-list at byte ${at} (corrupt pickle)`);
    this.charge(items.length);
    for (const x of items) list.push(x); // no spread: a long APPENDS would overflow the call stack
  }

  #setItems(target: unknown, items: unknown[], at: number): void {
    const m = target instanceof Map ? target : target instanceof PyObject ? target.items : undefined;
    if (!m) throw new Error(`SETITEM on a non-dict at byte ${at} (corrupt pickle)`);
    if (items.length % 2) throw new Error(`SETITEMS with an odd item count at byte ${at} (corrupt pickle)`);
    this.charge(items.length);
    for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
  }

  #memoPut(key: number, at: number): void {
    const v = this.#top(at);
    if (!this.#memo.has(key) && this.#memo.size >= PICKLE_LIMITS.maxMemo) {
      throw new Error(
        `the pickle memo grows past ${PICKLE_LIMITS.maxMemo} entries at byte ${at} (a memo bomb); refused`,
      );
    }
    this.#memo.set(key, v);
  }

  #memoGet(key: number | bigint | boolean, at: number): unknown {
    const k = Number(key);
    if (!this.#memo.has(k)) {
      throw new Error(`memo entry ${k} read before it was written at byte ${at} (corrupt pickle)`);
    }
    return this.#memo.get(k);
  }

  #pop(at: number): unknown {
    const v = this.#stack.pop();
    if (v === undefined || v === MARK) throw new Error(`stack underflow at byte ${at} (corrupt pickle)`);
    return v;
  }

  #top(at: number): unknown {
    const v = this.#stack.at(-1);
    if (v === undefined || v === MARK) throw new Error(`stack underflow at byte ${at} (corrupt pickle)`);
    return v;
  }

  #popMark(at: number): unknown[] {
    const m = this.#marks.pop();
    if (m === undefined) throw new Error(`missing MARK at byte ${at} (corrupt pickle)`);
    this.charge(this.#stack.length - m);
    const items = this.#stack.splice(m);
    items.shift();
    return items;
  }

  #advance(n: number): number {
    const p = this.#pos;
    if (p + n > this.bytes.length) {
      throw new Error(`the pickle ends inside an opcode at byte ${p} (truncated)`);
    }
    this.#pos += n;
    return p;
  }

  #take(n: number): Uint8Array {
    const p = this.#advance(n);
    return this.bytes.subarray(p, p + n);
  }

  #u8(): number {
    return this.bytes[this.#advance(1)];
  }

  #len32(): number {
    return this.#view.getUint32(this.#advance(4), true);
  }

  #len64(): number {
    const n = this.#view.getBigUint64(this.#advance(8), true);
    if (n > BigInt(this.bytes.length)) throw new Error(`a length of ${n} bytes exceeds the pickle (corrupt)`);
    return Number(n);
  }

  #line(): string {
    const start = this.#pos;
    const end = this.bytes.indexOf(0x0a, start);
    if (end < 0) throw new Error(`the pickle ends inside a text line at byte ${start} (truncated)`);
    this.#pos = end + 1;
    return latin1(this.bytes.subarray(start, end));
  }

  /** A module or class name line (GLOBAL, INST), of bounded length so errors stay short. */
  #name(at: number): string {
    const t = this.#line();
    if (t.length > MAX_NAME) {
      throw new Error(`a global name of more than ${MAX_NAME} characters at byte ${at} (corrupt pickle)`);
    }
    return t;
  }

  #text(b: Uint8Array, at: number): string {
    try {
      return this.#decoder.decode(b);
    } catch {
      throw new Error(`invalid UTF-8 text at byte ${at} (corrupt pickle)`);
    }
  }
}

/** Elements a container constructor would copy out of `x`. */
function copiedSize(x: unknown): number {
  if (Array.isArray(x)) return x.length;
  if (x instanceof Map || x instanceof Set) return x.size;
  if (typeof x === "string" || x instanceof Uint8Array) return x.length >> 6;
  return 0;
}

/** Longest module or class name a GLOBAL may give. */
const MAX_NAME = 1000;

/** Constructors NEWOBJ may run because they only build containers. */
const CONTAINER_TYPES = new Set(["collections.OrderedDict", "builtins.set", "builtins.frozenset"]);

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function unquote(t: string, at: number): string {
  const m = /^(['"])(.*)\1$/s.exec(t);
  if (!m) throw new Error(`bad STRING at byte ${at} (corrupt pickle)`);
  return m[2].replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"' } as Record<string, string>)[e] ?? e;
  });
}

function parseIntText(t: string, at: number): number | bigint {
  if (t.length > PICKLE_LIMITS.maxLongBytes) {
    throw new Error(`an integer of ${t.length} digits at byte ${at} (corrupt pickle)`);
  }
  if (!/^[-+]?\d+$/.test(t)) {
    throw new Error(`bad integer "${t.slice(0, 20)}" at byte ${at} (corrupt pickle)`);
  }
  const b = BigInt(t);
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Little-endian two's-complement integer of any width (LONG1/LONG4). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) x -= 1n << BigInt(8 * b.length);
  return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
}
