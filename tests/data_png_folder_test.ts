import assert from "node:assert/strict";
import { encodePng } from "../lib/deps.ts";
import { DataError } from "../lib/data/dataset.ts";
import { readPngFolder } from "../lib/data/png_folder.ts";

type PngSpec = Parameters<typeof encodePng>[0];

async function writePng(path: string, png: PngSpec): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(path, encodePng(png));
}

/** A 2x3 RGB image whose pixel (y, x) is (base + 10y + x, 100 + ..., 200 + ...) in HWC order. */
function rgb(base: number, channels = 3, alpha = 77): PngSpec {
  const data = new Uint8Array(2 * 3 * channels);
  for (let y = 0; y < 2; y++) {
    for (let x = 0; x < 3; x++) {
      const p = (y * 3 + x) * channels;
      data[p] = base + 10 * y + x;
      data[p + 1] = 100 + base + 10 * y + x;
      data[p + 2] = 200 + 10 * y + x;
      if (channels === 4) data[p + 3] = alpha;
    }
  }
  return { width: 3, height: 2, channels, depth: 8, data };
}

Deno.test("PNG folder: sorted classes, nested files, val/ as test split, CHW pixels, RGBA and palette become RGB", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writePng(`${root}/train/zebra/b.png`, rgb(1));
    await writePng(`${root}/train/zebra/a.png`, rgb(2, 4)); // RGBA: alpha dropped
    await writePng(`${root}/train/ant/sub/dir/c.PNG`, rgb(3));
    await Deno.writeTextFile(`${root}/train/ant/notes.txt`, "not an image");
    await writePng(`${root}/train/ant/pal.png`, {
      width: 3,
      height: 2,
      channels: 1,
      depth: 8,
      data: new Uint8Array([0, 1, 1, 0, 0, 1]),
      palette: [[9, 8, 7], [1, 2, 3]],
    } as PngSpec);
    await writePng(`${root}/val/zebra/x.png`, rgb(4));

    const ds = await readPngFolder(root);
    assert.equal(ds.name, root.split("/").pop());
    assert.deepEqual(ds.classNames, ["ant", "zebra"]);
    assert.deepEqual(ds.shape, [3, 2, 3]);
    assert.equal(ds.train.count, 4);
    assert.equal(ds.test.count, 1);
    // ant: pal.png, sub/dir/c.PNG (sorted paths); zebra: a.png, b.png.
    assert.deepEqual(Array.from(ds.train.labels), [0, 0, 1, 1]);
    assert.deepEqual(Array.from(ds.test.labels), [1]);
    const img = (i: number) => Array.from(ds.train.images.subarray(i * 18, (i + 1) * 18));
    // Palette image: indices 0 1 1 / 0 0 1 -> R plane 9 1 1 9 9 1, G 8 2 2 8 8 2, B 7 3 3 7 7 3.
    assert.deepEqual(img(0), [9, 1, 1, 9, 9, 1, 8, 2, 2, 8, 8, 2, 7, 3, 3, 7, 7, 3]);
    // c.PNG, base 3: R plane 3 4 5 13 14 15, G plane +100, B plane 200...
    assert.deepEqual(img(1), [
      3,
      4,
      5,
      13,
      14,
      15,
      103,
      104,
      105,
      113,
      114,
      115,
      200,
      201,
      202,
      210,
      211,
      212,
    ]);
    assert.deepEqual(img(2).slice(0, 6), [2, 3, 4, 12, 13, 14]); // RGBA a.png, alpha gone
    // Statistics come from the training split.
    const r = [...img(0).slice(0, 6), ...img(1).slice(0, 6), ...img(2).slice(0, 6), ...img(3).slice(0, 6)];
    const mean = r.reduce((a, b) => a + b, 0) / r.length / 255;
    assert.ok(Math.abs(ds.mean[0] - mean) < 1e-12);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: grey, grey+alpha, 16-bit and 1-bit images make a one-channel dataset", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writePng(`${root}/train/a/g8.png`, {
      width: 2,
      height: 2,
      channels: 1,
      depth: 8,
      data: new Uint8Array([0, 50, 100, 255]),
    });
    await writePng(`${root}/train/a/ga.png`, {
      width: 2,
      height: 2,
      channels: 2,
      depth: 8,
      data: new Uint8Array([1, 9, 2, 9, 3, 9, 4, 9]),
    });
    await writePng(`${root}/train/b/g16.png`, {
      width: 2,
      height: 2,
      channels: 1,
      depth: 16,
      data: new Uint16Array([0x1234, 0xff00, 0x00ff, 0xabcd]),
    });
    await writePng(`${root}/test/b/g1.png`, {
      width: 2,
      height: 2,
      channels: 1,
      depth: 1,
      data: new Uint8Array([0b10000000, 0b01000000]),
    });
    const ds = await readPngFolder(`${root}/`);
    assert.deepEqual(ds.shape, [1, 2, 2]);
    assert.deepEqual(Array.from(ds.train.images), [0, 50, 100, 255, 1, 2, 3, 4, 0x12, 0xff, 0x00, 0xab]);
    assert.deepEqual(Array.from(ds.test.images), [255, 0, 0, 255]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: an image of another size or channel count is a DataError naming both files", async () => {
  const root = await Deno.makeTempDir();
  try {
    await writePng(`${root}/train/a/1.png`, rgb(1));
    await writePng(`${root}/train/a/2.png`, {
      width: 4,
      height: 2,
      channels: 3,
      depth: 8,
      data: new Uint8Array(24),
    });
    await writePng(`${root}/test/a/1.png`, rgb(1));
    await assert.rejects(readPngFolder(root), (e) =>
      e instanceof DataError &&
      e.message === `${root}/train/a/2.png: 4x2 RGB image, but ${root}/train/a/1.png is 3x2 RGB; ` +
          "all images must share one size and channel count");
    await writePng(`${root}/train/a/2.png`, {
      width: 3,
      height: 2,
      channels: 1,
      depth: 8,
      data: new Uint8Array(6),
    });
    await assert.rejects(readPngFolder(root), /2\.png: 3x2 grey image, but .*1\.png is 3x2 RGB/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: missing splits, unknown test class and unreadable files are clear errors", async () => {
  const root = await Deno.makeTempDir();
  try {
    await assert.rejects(
      readPngFolder(root),
      (e) => e instanceof DataError && e.message.startsWith(`${root}/train: missing`),
    );
    await writePng(`${root}/train/a/1.png`, rgb(1));
    await assert.rejects(
      readPngFolder(root),
      (e) => e instanceof DataError && e.message === `${root}: has no test/ or val/ folder beside train/`,
    );
    await writePng(`${root}/test/b/1.png`, rgb(1));
    await assert.rejects(
      readPngFolder(root),
      (e) => e instanceof DataError && e.message === `${root}/test/b: class not present in ${root}/train`,
    );
    await Deno.rename(`${root}/test/b`, `${root}/test/a`);
    await Deno.writeTextFile(`${root}/train/a/0.png`, "this is not a png");
    await assert.rejects(
      readPngFolder(root),
      (e) => e instanceof DataError && e.message.startsWith(`${root}/train/a/0.png: not a readable PNG`),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PNG folder: progress reports every decoded file up to the total", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 3; i++) await writePng(`${root}/train/c${i}/x.png`, rgb(i));
    await writePng(`${root}/test/c0/x.png`, rgb(9));
    const events: number[] = [];
    await readPngFolder(root, { onProgress: (p) => events.push(p.done) });
    assert.deepEqual(events, [4]); // reported every 256 files and at the end
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
