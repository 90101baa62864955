/**
 * Reads PyTorch `.pth` checkpoints without Python: the zip format `torch.save` writes since
 * 1.6, unpickled by a whitelisting unpickler that executes nothing. Finds the state dict in a
 * plain state dict, in a training wrapper (`{'model': sd, 'epoch': 3}`, `{'state_dict': ...}`,
 * `{'net': ...}`), with DataParallel `module.` prefixes, or in a whole pickled `nn.Module`
 * (parameters and persistent buffers collected through `_modules`, as `state_dict()` would).
 *
 * Every failure is a {@link CheckpointError}: one line naming the file and the problem.
 *
 * @example
 * ```ts ignore
 * import { loadPth } from "./pth.ts";
 * const ckpt = await loadPth("teacher.pth");
 * console.log(ckpt.format, ckpt.stateDict.get("fc.weight")?.shape); // state_dict [ 100, 64 ]
 * ```
 * @module
 */

import type { HostTensor, StateDict } from "../lib/tensor.ts";
import { CheckpointError, withFileName } from "./checkpoint_error.ts";
import {
  findNonFinite,
  type NonFinitePolicy,
  nonFiniteRefusal,
  type NonFiniteTensor,
} from "../lib/non_finite.ts";
import { PyGlobal, PyObject, shortRepr, unpickle } from "./pickle.ts";
import { tensorValues, toHostTensor } from "./tensor_view.ts";
import { TorchTensorRef, torchUnpickleOptions } from "./torch_pickle.ts";
import { looksLikeZip, ZipArchive } from "./zip_reader.ts";

export { CheckpointError } from "./checkpoint_error.ts";

/** What {@link readCheckpoint} found. */
export interface Checkpoint {
  /** Every tensor of the model, in the file's order, `module.` prefixes removed. */
  stateDict: StateDict;
  /**
   * `state_dict`, `wrapped:<key>` (the dict entry that held it; `wrapped:<outer>.<key>` one level
   * deeper) or `module:<ClassName>`.
   */
  format: string;
  /** The wrapper's other entries (epoch, accuracy, ...) as JSON-friendly summaries. */
  extra: Record<string, unknown>;
  /** Class of the pickled module when the model was saved whole (`models.resnet.ResNet`). */
  moduleClass?: string;
  /** Prefix removed from every key (`module.` from DataParallel), if any. */
  strippedPrefix?: string;
  /** Tensors holding NaN or ±Inf (only non-empty when `allowNonFinite` let them through). */
  nonFinite: NonFiniteTensor[];
}

/** Options of {@link readCheckpoint}. */
export type ReadCheckpointOptions = NonFinitePolicy;

/**
 * Limits on what a checkpoint may make the reader build, whatever its pickle says.
 *
 * @example
 * ```ts
 * import { PTH_LIMITS } from "./pth.ts";
 * console.log(PTH_LIMITS.maxModuleDepth); // 256
 * ```
 */
export const PTH_LIMITS = {
  /** Bytes of tensors materialised per byte of file (views may repeat a storage). */
  tensorBytesPerFileByte: 4,
  /** Bytes of tensors materialised on top of that (broadcast views of small storages). */
  tensorBytesSlack: 256 * 2 ** 20,
  /** Nesting of submodules in a pickled nn.Module. */
  maxModuleDepth: 256,
  /** Submodules visited in all (shared submodules count each time they are reached). */
  maxModules: 100_000,
  /** Characters of one state-dict key. */
  maxKeyChars: 1000,
} as const;

/** A "no state dict here" finding: the search may go on elsewhere. */
class NotFoundError extends Error {}

/** Wrapper keys training scripts use, most specific first. */
const WRAPPER_KEYS = ["state_dict", "model_state_dict", "model", "net", "module", "model_state", "weights"];

/** The first object `torch.save(..., _use_new_zipfile_serialization=False)` pickles. */
const LEGACY_MAGIC = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

const RESAVE_HINT = "re-save it with torch >= 1.6: torch.save(torch.load(old_path), new_path)";

/**
 * Reads a checkpoint held in memory. `fileName` only labels error messages.
 *
 * @example
 * ```ts
 * import { readCheckpoint, CheckpointError } from "./pth.ts";
 * try {
 *   readCheckpoint(new Uint8Array(0), "empty.pth");
 * } catch (e) {
 *   console.log(e instanceof CheckpointError, (e as Error).message); // true empty.pth: the file is empty
 * }
 * ```
 */
export function readCheckpoint(
  bytes: Uint8Array,
  fileName: string,
  options: ReadCheckpointOptions = {},
): Checkpoint {
  if (bytes.length === 0) throw new CheckpointError(fileName, "the file is empty");
  if (!looksLikeZip(bytes)) throw new CheckpointError(fileName, notZipProblem(bytes, fileName));
  const zip = withFileName(fileName, "not a readable zip archive", () => new ZipArchive(bytes));
  const prefix = archivePrefix(zip, fileName);
  const byteOrder = zip.has(`${prefix}/byteorder`)
    ? withFileName(fileName, "", () => new TextDecoder().decode(zip.read(`${prefix}/byteorder`)).trim())
    : "little";
  const bigEndian = byteOrder === "big";
  const pklName = `${prefix}/data.pkl`;
  const root = withFileName(fileName, pklName, () => unpickle(zip.read(pklName), torchUnpickleOptions()));

  const storages = new Map<string, Uint8Array>();
  const storageBytes = (key: string): Uint8Array => {
    let b = storages.get(key);
    if (!b) {
      const name = `${prefix}/data/${key}`;
      if (!zip.has(name)) throw new Error(`its storage ${name} is missing from the archive`);
      b = zip.read(name);
      storages.set(key, b);
    }
    return b;
  };

  const found = withFileName(fileName, "", () => locateStateDict(root, 0));
  const longKey = found.tensors.find(([key]) => key.length > PTH_LIMITS.maxKeyChars);
  if (longKey) {
    throw new CheckpointError(
      fileName,
      `a tensor name of ${longKey[0].length} characters (${
        clip(longKey[0])
      }); at most ${PTH_LIMITS.maxKeyChars}`,
    );
  }
  const stateDict: StateDict = new Map();
  const budget = PTH_LIMITS.tensorBytesPerFileByte * bytes.length + PTH_LIMITS.tensorBytesSlack;
  let materialised = 0;
  // The whole budget is checked before the first tensor is built.
  for (const [key, ref] of found.tensors) {
    const n = ref.numel;
    materialised += (Number.isSafeInteger(n) ? n : Infinity) * (ref.dtype === "int64" ? 8 : 4);
    if (materialised > budget) {
      throw new CheckpointError(
        fileName,
        `tensor ${clip(key)}: its shape [${ref.shape.join(", ")}] would make the tensors exceed ` +
          `${
            (budget / 2 ** 20).toFixed(0)
          } MiB for a ${bytes.length}-byte file (views repeating a small storage); refused`,
      );
    }
  }
  for (const [key, ref] of found.tensors) {
    stateDict.set(
      key,
      withFileName(
        fileName,
        `tensor ${clip(key)}`,
        () => toHostTensor(ref, storageBytes(ref.storage.key), bigEndian),
      ),
    );
  }
  const { dict, prefix: stripped } = stripCommonPrefixes(stateDict);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of found.rest) {
    extra[k] = withFileName(fileName, `entry ${clip(k)}`, () => summarize(v, 0, storageBytes, bigEndian));
  }
  const nonFinite = findNonFinite(dict);
  if (nonFinite.length > 0 && !options.allowNonFinite) {
    throw new CheckpointError(
      fileName,
      nonFiniteRefusal(nonFinite, options.nonFiniteHint),
    );
  }
  const out: Checkpoint = { stateDict: dict, format: found.format, extra, nonFinite };
  if (found.moduleClass) out.moduleClass = found.moduleClass;
  if (stripped) out.strippedPrefix = stripped;
  return out;
}

/**
 * Reads the checkpoint at `path` (a path or a `file:` URL); errors name it as given.
 *
 * @example
 * ```ts
 * import { loadPth } from "./pth.ts";
 * try {
 *   await loadPth("no_such_teacher.pth");
 * } catch (e) {
 *   console.log((e as Error).message); // no_such_teacher.pth: cannot read the file (no such file)
 * }
 * ```
 */
export async function loadPth(path: string | URL, options: ReadCheckpointOptions = {}): Promise<Checkpoint> {
  const label = path instanceof URL ? (path.protocol === "file:" ? path.pathname : path.href) : path;
  let bytes: Uint8Array;
  try {
    // A device or FIFO would be read without end.
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new CheckpointError(label, "cannot read the file (it is a directory)");
    if (!info.isFile) throw new CheckpointError(label, "not a regular file (a device or pipe)");
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Deno.errors.NotCapable
      ? "no read permission; run with --allow-read"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : (e as Error).message.split("\n")[0];
    throw new CheckpointError(label, `cannot read the file (${why})`);
  }
  return readCheckpoint(bytes, label, options);
}

/** Why bytes that are not a zip are not a checkpoint we read. */
function notZipProblem(bytes: Uint8Array, fileName: string): string {
  const legacy = bytes[0] === 0x80 && LEGACY_MAGIC.every((b, i) => bytes[2 + i] === b);
  const legacyFramed = bytes[0] === 0x80 && bytes[2] === 0x95 &&
    LEGACY_MAGIC.every((b, i) => bytes[11 + i] === b);
  if (legacy || legacyFramed) {
    return `legacy (pre-1.6, non-zip) torch.save format, which is not supported; ${RESAVE_HINT}`;
  }
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar") {
    return `a tar archive (the oldest torch.save format), which is not supported; ${RESAVE_HINT}`;
  }
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    // A plain pickle: read it with the same whitelist so a hostile one is named as such.
    withFileName(fileName, "", () => unpickle(bytes, torchUnpickleOptions()));
    return "a plain pickle, not a PyTorch checkpoint (torch.save writes a zip archive); save the model with torch.save";
  }
  if (bytes.length >= 10 && bytes[8] === 0x7b && bytes[9] === 0x22) {
    return "looks like a safetensors file, not a PyTorch .pth checkpoint";
  }
  const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  return `not a PyTorch checkpoint: unrecognised header (first bytes ${head})`;
}

/** The single `<prefix>/data.pkl` of the archive. */
function archivePrefix(zip: ZipArchive, fileName: string): string {
  const names = zip.names();
  // TorchScript archives also hold data.pkl, beside compiled code and constants.
  if (names.some((n) => /^[^/]+\/(constants\.pkl$|code\/)/.test(n))) {
    throw new CheckpointError(
      fileName,
      "a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save model.state_dict() with torch.save",
    );
  }
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 1) return pkls[0].slice(0, -"/data.pkl".length);
  if (pkls.length > 1) {
    throw new CheckpointError(fileName, `the archive holds several data.pkl entries (${pkls.join(", ")})`);
  }
  const shown = names.slice(0, 5).join(", ") + (names.length > 5 ? `, ... (${names.length} entries)` : "");
  throw new CheckpointError(
    fileName,
    `a zip archive but not a PyTorch checkpoint: no <name>/data.pkl entry (entries: ${shown || "none"})`,
  );
}

interface Located {
  tensors: [string, TorchTensorRef][];
  format: string;
  rest: [string, unknown][];
  moduleClass?: string;
}

/**
 * Where the model's tensors are in the unpickled object. `depth` 0 may look one level further
 * down a wrapper key ({'model': {'state_dict': sd}}); nothing deeper is searched, so dicts that
 * refer to each other or share subtrees cost one pass over two levels.
 */
function locateStateDict(root: unknown, depth: number): Located {
  if (isTensorDict(root)) return { tensors: tensorEntries(root), format: "state_dict", rest: [] };
  if (isModule(root)) {
    return {
      tensors: moduleTensors(root),
      format: `module:${root.cls.name}`,
      rest: [],
      moduleClass: root.className,
    };
  }
  if (root instanceof Map) {
    const candidates = [...root.keys()].filter((k): k is string => typeof k === "string")
      .filter((k) => isTensorDict(root.get(k)) || isModule(root.get(k)));
    const key = WRAPPER_KEYS.find((k) => candidates.includes(k)) ??
      (candidates.length === 1 ? candidates[0] : undefined);
    if (key === undefined) {
      // One more level, as in {'model': {'state_dict': sd}}: format wrapped:model.state_dict.
      for (const outer of depth === 0 ? WRAPPER_KEYS : []) {
        const inner: unknown = root.get(outer);
        if (!(inner instanceof Map) || inner === root) continue;
        let found: Located;
        try {
          found = locateStateDict(inner, depth + 1);
        } catch (e) {
          if (e instanceof NotFoundError) continue; // not a wrapper either
          throw e;
        }
        if (!found.format.startsWith("wrapped:")) continue;
        const rest = [...root].filter(([k]) => k !== outer && typeof k === "string") as [string, unknown][];
        return {
          ...found,
          format: `wrapped:${outer}.${found.format.slice(8)}`,
          rest: [...rest, ...found.rest],
        };
      }
      const keys = [...root.keys()].slice(0, 12).map((k) =>
        typeof k === "string" ? k.slice(0, 40) : shortRepr(k, 40)
      )
        .join(", ");
      if (candidates.length > 1) {
        throw new NotFoundError(
          `holds several state dicts (${candidates.slice(0, 12).join(", ")}) and none under a usual key`,
        );
      }
      throw new NotFoundError(
        `holds no state dict: the saved object is a dict with keys ${keys || "(none)"}`,
      );
    }
    const inner = root.get(key);
    const rest = [...root].filter(([k]) => k !== key && typeof k === "string") as [string, unknown][];
    if (isModule(inner)) {
      return { tensors: moduleTensors(inner), format: `wrapped:${key}`, rest, moduleClass: inner.className };
    }
    return { tensors: tensorEntries(inner as Map<string, TorchTensorRef>), format: `wrapped:${key}`, rest };
  }
  throw new NotFoundError(`holds no state dict: the saved object is ${describeValue(root)}`);
}

function isTensorDict(v: unknown): v is Map<string, TorchTensorRef> {
  if (!(v instanceof Map) || v.size === 0) return false;
  for (const [k, t] of v) if (typeof k !== "string" || !(t instanceof TorchTensorRef)) return false;
  return true;
}

function tensorEntries(m: Map<string, TorchTensorRef>): [string, TorchTensorRef][] {
  return [...m];
}

function isModule(v: unknown): v is PyObject {
  return v instanceof PyObject && v.attr("_modules") instanceof Map && v.attr("_parameters") instanceof Map;
}

/** Parameters, then persistent buffers, then children: the order of `Module.state_dict()`. */
function moduleTensors(root: PyObject): [string, TorchTensorRef][] {
  const out: [string, TorchTensorRef][] = [];
  const ancestors = new Set<PyObject>();
  let visited = 0;
  const walk = (m: PyObject, prefix: string, depth: number) => {
    if (ancestors.has(m)) throw new Error(`module ${clip(prefix) || "(root)"} contains itself`);
    if (depth > PTH_LIMITS.maxModuleDepth) {
      throw new Error(`submodules are nested more than ${PTH_LIMITS.maxModuleDepth} deep; refused`);
    }
    if (++visited > PTH_LIMITS.maxModules) {
      throw new Error(`more than ${PTH_LIMITS.maxModules} submodules (shared subtrees); refused`);
    }
    ancestors.add(m);
    const nonPersistent = m.attr("_non_persistent_buffers_set");
    const skip = nonPersistent instanceof Set ? nonPersistent : new Set();
    for (const field of ["_parameters", "_buffers"]) {
      const tensors = m.attr(field);
      if (!(tensors instanceof Map)) continue;
      for (const [name, t] of tensors) {
        if (t === null || (field === "_buffers" && skip.has(name))) continue;
        if (typeof name !== "string" || !(t instanceof TorchTensorRef)) {
          throw new Error(
            `${clip(m.cls.name)}.${field} entry ${clip(prefix)}${shortRepr(name, 40)} is not a named tensor`,
          );
        }
        if (out.length >= PTH_LIMITS.maxModules * 10) {
          throw new Error(`more than ${PTH_LIMITS.maxModules * 10} tensors (shared subtrees); refused`);
        }
        out.push([`${prefix}${name}`, t]);
      }
    }
    const children = m.attr("_modules") as Map<unknown, unknown>;
    for (const [name, child] of children) {
      if (child === null) continue;
      if (typeof name !== "string") {
        throw new Error(`a submodule of ${clip(prefix) || "(root)"} has a non-text name`);
      }
      if (!isModule(child)) throw new Error(`submodule ${clip(prefix + name)} is not a module`);
      walk(child, `${prefix}${name}.`, depth + 1);
    }
    ancestors.delete(m);
  };
  walk(root, "", 0);
  if (out.length === 0) throw new Error(`the pickled ${root.className} has no parameters or buffers`);
  return out;
}

/** Removes `module.` (DataParallel, DDP) and `_orig_mod.` (torch.compile) when every key has it. */
function stripCommonPrefixes(sd: StateDict): { dict: StateDict; prefix: string } {
  let prefix = "";
  let keys = [...sd.keys()];
  for (;;) {
    const p = ["module.", "_orig_mod."].find((c) =>
      keys.every((k) => k.startsWith(c) && k.length > c.length)
    );
    if (!p) break;
    prefix += p;
    keys = keys.map((k) => k.slice(p.length));
  }
  if (!prefix) return { dict: sd, prefix };
  const dict: StateDict = new Map();
  for (const [k, t] of sd) dict.set(k.slice(prefix.length), t);
  return { dict, prefix };
}

/** A JSON-friendly, size-bounded rendering of a wrapper entry (epoch, accuracy, optimizer). */
function summarize(
  v: unknown,
  depth: number,
  storageBytes: (key: string) => Uint8Array,
  bigEndian: boolean,
): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof TorchTensorRef) {
    if (v.numel === 1 && v.dtype) return tensorValues(v, storageBytes(v.storage.key), bigEndian)[0];
    return `<tensor ${v.dtype ?? v.storage.typeName} [${v.shape.join(", ")}]>`;
  }
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof PyGlobal) return v.qualifiedName;
  if (v instanceof PyObject) return `<${v.className} object>`;
  if (v instanceof Set) return `<set of ${v.size}>`;
  if (Array.isArray(v)) {
    if (depth >= 3 || v.length > 16) return `<list of ${v.length}>`;
    return v.map((x) => summarize(x, depth + 1, storageBytes, bigEndian));
  }
  if (v instanceof Map) {
    if (depth >= 3 || v.size > 32) return `<dict with ${v.size} entries>`;
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[String(k)] = summarize(x, depth + 1, storageBytes, bigEndian);
    return o;
  }
  return String(v);
}

/** A name from the file, shortened for an error message. */
function clip(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

function describeValue(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return `a list or tuple of ${v.length}`;
  if (v instanceof PyObject) return `an instance of ${v.className} that is not a module`;
  if (v instanceof TorchTensorRef) return "a single tensor";
  if (v instanceof Map) return "an empty dict";
  return `a ${typeof v}`;
}

/**
 * The tensors of a checkpoint as one line, for logs: count, parameters, dtypes.
 *
 * @example
 * ```ts
 * import { describeStateDict } from "./pth.ts";
 * const sd = new Map([["w", { dtype: "float32" as const, shape: [2, 3], data: new Float32Array(6) }]]);
 * console.log(describeStateDict(sd)); // 1 tensors, 6 values (float32)
 * ```
 */
export function describeStateDict(sd: StateDict): string {
  let values = 0;
  const dtypes = new Set<HostTensor["dtype"]>();
  for (const t of sd.values()) {
    values += t.data.length;
    dtypes.add(t.dtype);
  }
  return `${sd.size} tensors, ${values} values (${[...dtypes].join(", ")})`;
}
