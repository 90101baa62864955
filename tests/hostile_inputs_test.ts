/**
 * The smaller hostile-input items of issue 16: a symbolic-link loop in a PNG folder is refused
 * (it used to be followed until the OS gave up: 48 images became 688), an empty class folder is
 * refused instead of being a class no image teaches, and an ONNX graph with operators the
 * importer lacks is named by the operator the model was written with (LSTM, a decomposed GELU)
 * rather than by whichever piece comes first (Transpose, Div).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { OnnxFormatError } from "../convert/onnx_errors.ts";
import { importOnnx, SUPPORTED_ONNX_OPS } from "../convert/onnx_import.ts";
import {
  decodeOnnxModel,
  encodeOnnxModel,
  floatTensor,
  type OnnxModel,
  type OnnxNode,
} from "../convert/onnx_proto.ts";
import { DataError } from "../lib/data/dataset.ts";
import { readPngFolder } from "../lib/data/png_folder.ts";
import { encodePng } from "../lib/deps.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));

async function png(file: string, value: number): Promise<void> {
  await Deno.mkdir(path.dirname(file), { recursive: true });
  await Deno.writeFile(
    file,
    encodePng({ width: 2, height: 2, channels: 1, depth: 8, data: new Uint8Array(4).fill(value) }),
  );
}

async function folder(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "okd_hostile_png_" });
  for (const cls of ["cat", "dog"]) {
    for (let i = 0; i < 3; i++) await png(`${root}/train/${cls}/${i}.png`, i);
    await png(`${root}/test/${cls}/t.png`, 9);
  }
  return root;
}

Deno.test("PNG folder: a symbolic link loop is refused naming the link, not followed", async () => {
  const root = await folder();
  try {
    const before = await readPngFolder(root);
    assert.equal(before.train.count, 6);
    await Deno.symlink("..", `${root}/train/cat/again`); // train/cat/again -> train
    await Deno.symlink(".", `${root}/train/dog/self`); // train/dog/self -> train/dog
    await assert.rejects(readPngFolder(root), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(
        e.message,
        /train\/cat\/again\/cat: symbolic link loop \(it leads back to .*train\/cat\); remove the link$/,
      );
      return true;
    });
    await Deno.remove(`${root}/train/cat/again`);
    await assert.rejects(readPngFolder(root), /train\/dog\/self: symbolic link loop/);
    // A link to a folder elsewhere is still followed, once.
    await Deno.remove(`${root}/train/dog/self`);
    await png(`${root}/extra/e.png`, 5);
    await Deno.symlink(`${root}/extra`, `${root}/train/dog/extra`);
    assert.equal((await readPngFolder(root)).train.count, 7);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: a .png that is a link to a device is refused, not read without end", async () => {
  const root = await folder();
  try {
    await Deno.symlink("/dev/zero", `${root}/train/cat/zero.png`);
    await assert.rejects(readPngFolder(root), /train\/cat\/zero\.png: not a regular file/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: an empty class folder is refused by name, in train and in test", async () => {
  const root = await folder();
  try {
    await Deno.mkdir(`${root}/train/eel`);
    await assert.rejects(
      readPngFolder(root),
      (e: Error) =>
        e instanceof DataError && /train\/eel: empty class folder \(no \.png files\)/.test(e.message),
    );
    await png(`${root}/train/eel/0.png`, 1);
    await Deno.mkdir(`${root}/test/eel/sub`, { recursive: true });
    await assert.rejects(readPngFolder(root), /test\/eel: empty class folder/);
    await png(`${root}/test/eel/sub/0.png`, 1);
    assert.deepEqual((await readPngFolder(root)).classNames, ["cat", "dog", "eel"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function resnet8(): OnnxModel {
  const f = path.join(HERE, "fixtures", "onnx", "resnet8_opset13.onnx");
  return decodeOnnxModel(Deno.readFileSync(f), f);
}

function expectOnnx(m: OnnxModel, ...fragments: RegExp[]): void {
  assert.throws(() => importOnnx(encodeOnnxModel(m), "m.onnx"), (e: unknown) => {
    assert.ok(e instanceof OnnxFormatError, String(e));
    assert.ok(!e.message.includes("\n"));
    for (const r of fragments) assert.match(e.message, r);
    return true;
  });
}

/** Replaces the first Relu by `nodes` computing the same value name. */
function replaceFirstRelu(m: OnnxModel, make: (x: string, y: string) => OnnxNode[]): void {
  const i = m.nodes.findIndex((n) => n.opType === "Relu");
  const relu = m.nodes[i];
  m.nodes.splice(i, 1, ...make(relu.inputs[0], relu.outputs[0]));
}

const node = (name: string, opType: string, inputs: string[], outputs: string[]): OnnxNode => ({
  name,
  opType,
  domain: "",
  inputs,
  outputs,
  attributes: [],
});

Deno.test("ONNX: an LSTM behind a Transpose is named as the LSTM, with the other unsupported ops", () => {
  const m = resnet8();
  replaceFirstRelu(m, (x, y) => [
    node("/rnn/Transpose", "Transpose", [x], ["t"]),
    node("/rnn/LSTM", "LSTM", ["t"], ["l"]),
    node("/rnn/Squeeze", "Squeeze", ["l"], [y]),
  ]);
  expectOnnx(
    m,
    /^m\.onnx: node "\/rnn\/LSTM" \(LSTM\): unsupported operator LSTM; supported: /,
    new RegExp(SUPPORTED_ONNX_OPS.join(", ")),
  );
});

Deno.test("ONNX: a GELU that the exporter decomposed is called a GELU, not a Div", () => {
  const m = resnet8();
  m.initializers.push(floatTensor("sqrt2", [], new Float32Array([Math.SQRT2])));
  m.initializers.push(floatTensor("one", [], new Float32Array([1])));
  m.initializers.push(floatTensor("half", [], new Float32Array([0.5])));
  replaceFirstRelu(m, (x, y) => [
    node("/act/Div", "Div", [x, "sqrt2"], ["d"]),
    node("/act/Erf", "Erf", ["d"], ["e"]),
    node("/act/Add", "Add", ["e", "one"], ["a"]),
    node("/act/Mul", "Mul", [x, "a"], ["p"]),
    node("/act/Mul_1", "Mul", ["p", "half"], [y]),
  ]);
  expectOnnx(
    m,
    /^m\.onnx: node "\/act\/Div" \(Div\): unsupported operator Div \(part of a decomposed GELU: Div, Erf, Add, Mul\); the graph also uses Erf, Mul; supported: /,
  );
});

Deno.test("ONNX: a decomposed SiLU is recognised too", () => {
  const m = resnet8();
  replaceFirstRelu(m, (x, y) => [
    node("/act/Sigmoid", "Sigmoid", [x], ["s"]),
    node("/act/Mul", "Mul", [x, "s"], [y]),
  ]);
  expectOnnx(
    m,
    /node "\/act\/Sigmoid" \(Sigmoid\): unsupported operator Sigmoid \(part of a decomposed SiLU\/Swish: Sigmoid, Mul\)/,
  );
});
