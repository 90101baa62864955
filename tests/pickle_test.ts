import assert from "node:assert/strict";
import { ForbiddenGlobalError, PyGlobal, PyObject, unpickle } from "../convert/pickle.ts";
import { decodeBase64 } from "./test_utils.ts";

interface PickleFixture {
  expected: unknown;
  cases: { protocol: number; b64: string }[];
  hostile: { protocol: number; b64: string; global: string }[];
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/pth/pickles.json", import.meta.url)),
) as PickleFixture;

/** The canonical JSON form tools/make_pth_fixtures.py writes for the same Python values. */
function canon(v: unknown): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string" || typeof v === "number") return v;
  if (typeof v === "bigint") return { int: v.toString() };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(canon);
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [canon(k), canon(x)]) };
  if (v instanceof Set) {
    return { set: [...v].map(canon).sort((a, b) => (a as number) - (b as number)) };
  }
  if (v instanceof PyObject) return { object: v.className, state: canon(v.state) };
  throw new Error(`unexpected value ${String(v)}`);
}

for (const c of fixture.cases) {
  Deno.test(`pickle protocol ${c.protocol}: every value equals Python's`, () => {
    const value = unpickle(decodeBase64(c.b64));
    assert.deepEqual(canon(value), fixture.expected);
  });
}

Deno.test("pickle: a shared list is one object, as in Python", () => {
  const value = unpickle(decodeBase64(fixture.cases[2].b64)) as Map<string, unknown>;
  const shared = value.get("shared") as unknown[][];
  assert.equal(shared[0], shared[1]);
});

Deno.test("pickle: class instances stay inert records with their class and state", () => {
  for (const c of fixture.cases) {
    const thing = (unpickle(decodeBase64(c.b64)) as Map<string, unknown>).get("thing");
    assert.ok(thing instanceof PyObject, `protocol ${c.protocol}`);
    assert.equal(thing.className, "toy.Thing");
    assert.equal(thing.attr("name"), "thing");
  }
});

for (const h of fixture.hostile) {
  Deno.test(`pickle protocol ${h.protocol}: a REDUCE of ${h.global} is refused by name`, () => {
    assert.throws(
      () => unpickle(decodeBase64(h.b64)),
      (e: unknown) => {
        assert.ok(e instanceof ForbiddenGlobalError);
        assert.equal(e.globalName, h.global);
        assert.match(e.message, new RegExp(`calls ${h.global.replace(".", "\\.")}, which is not allowed`));
        return true;
      },
    );
  });
}

/** Opcode bytes from a mix of numbers and ASCII text. */
function bytesOf(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else for (const ch of p) out.push(ch.charCodeAt(0));
  }
  return new Uint8Array(out);
}

Deno.test("pickle: a global named but never called is an inert value", () => {
  const v = unpickle(bytesOf(0x80, 2, "cposix\nsystem\n", "."));
  assert.ok(v instanceof PyGlobal);
  assert.equal(v.qualifiedName, "posix.system");
});

Deno.test("pickle: builtins.eval via STACK_GLOBAL + REDUCE is refused", () => {
  const v = bytesOf(
    0x80,
    4,
    0x8c,
    8,
    "builtins",
    0x8c,
    4,
    "eval",
    0x93,
    0x8c,
    1,
    "1",
    0x85,
    0x52,
    ".",
  );
  assert.throws(() => unpickle(v), /calls builtins\.eval, which is not allowed/);
});

Deno.test("pickle: a persistent id without a resolver is refused", () => {
  assert.throws(() => unpickle(bytesOf(0x80, 2, "K", 1, 0x51, ".")), /persistent id/);
});

Deno.test("pickle: corrupt and truncated data give one-line errors", () => {
  const cases: [Uint8Array, RegExp][] = [
    [bytesOf(0x80, 2, 0xff, "."), /unknown opcode 0xff at byte 2/],
    [bytesOf(0x80, 2, "]"), /ends without a STOP/],
    [bytesOf(0x80, 2, "X", 100, 0, 0, 0, "ab"), /ends inside an opcode/],
    [bytesOf(0x80, 2, "h", 9, "."), /memo entry 9 read before it was written/],
    [bytesOf(0x80, 2, "t", "."), /missing MARK/],
    [bytesOf(0x80, 2, "a", "."), /stack underflow/],
    [bytesOf(0x80, 9, "N."), /protocol 9 is newer than 5/],
    [bytesOf(0x80, 2, "X", 2, 0, 0, 0, 0xc3, 0x28, "."), /invalid UTF-8/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => unpickle(bytes), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});
