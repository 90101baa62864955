/**
 * Teachers by name: the paper's checkpoints are downloaded (here from a loopback mirror serving
 * the same files as ../shared/teachers), checked against the pinned sha256 and loaded strictly;
 * a wrong file is refused with both digests and nothing is kept; offline, the error names the URL
 * and how to use a local file.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { paperTeacher, resolveTeacher } from "../app/teachers.ts";
import { SHARED_DIR, sharedTest } from "./test_utils.ts";

async function withMirror(
  files: Record<string, Uint8Array<ArrayBuffer>>,
  fn: (base: string) => Promise<void>,
) {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const body = files[new URL(req.url).pathname.slice(1)];
      return body ? new Response(body) : new Response("no", { status: 404 });
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}/`);
  } finally {
    ac.abort();
    await server.finished;
  }
}

Deno.test("published teachers: URLs follow the paper's repository layout, hashes pinned except resnet110", () => {
  assert.equal(
    paperTeacher("cifar100", "resnet56")?.url,
    "https://raw.githubusercontent.com/myunghakLee/Distillation-for-High-Quality-Knowledge-Extraction/master/teacher_models/CIFAR100/resnet56/model.pth",
  );
  assert.ok(paperTeacher("cifar10", "resnet32")?.url.endsWith("teacher_models/CIFAR10/resnet32/best.pth"));
  assert.equal(paperTeacher("cifar100", "resnet110")?.sha256, null);
  assert.equal(paperTeacher("fashion-mnist", "resnet56"), undefined);
});

sharedTest(
  "--teacher resnet56 --data cifar100 downloads, verifies the sha256 and loads strictly",
  async () => {
    const bytes = await Deno.readFile(new URL("teachers/cifar100/resnet56.pth", SHARED_DIR));
    const dir = await Deno.makeTempDir();
    try {
      await withMirror({ "teacher_models/CIFAR100/resnet56/model.pth": bytes }, async (baseUrl) => {
        const t = await resolveTeacher("resnet56", {
          dataset: "cifar100",
          weightsDir: dir,
          download: true,
          baseUrl,
        });
        assert.equal(t.graph.arch, "resnet56");
        assert.equal(t.graph.numClasses, 100);
        assert.deepEqual(await Deno.readFile(path.join(dir, "cifar100_resnet56.pth")), bytes);
      });
      // Now cached: no server needed.
      const again = await resolveTeacher("resnet56", {
        dataset: "cifar100",
        weightsDir: dir,
        download: false,
      });
      assert.equal(again.graph.arch, "resnet56");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

sharedTest("a mirror serving the wrong file is refused with both digests; nothing is kept", async () => {
  const wrong = await Deno.readFile(new URL("teachers/cifar100/resnet20.pth", SHARED_DIR));
  const dir = await Deno.makeTempDir();
  try {
    await withMirror({ "teacher_models/CIFAR100/resnet56/model.pth": wrong }, async (baseUrl) => {
      await assert.rejects(
        resolveTeacher("resnet56", { dataset: "cifar100", weightsDir: dir, download: true, baseUrl }),
        /Checksum mismatch for .*resnet56\/model\.pth: expected sha256 2f0bccdb.*, got 1fccacf6/,
      );
    });
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("offline: the error names the URL that failed and how to use a local file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      resolveTeacher("resnet32", {
        dataset: "cifar10",
        weightsDir: dir,
        download: true,
        baseUrl: "http://127.0.0.1:9/",
      }),
      (e: Error) => {
        assert.match(
          e.message,
          /Could not download http:\/\/127\.0\.0\.1:9\/teacher_models\/CIFAR10\/resnet32\/best\.pth/,
        );
        assert.match(e.message, /save it as .*cifar10_resnet32\.pth, or pass --teacher <file\.pth>/);
        return true;
      },
    );
    await assert.rejects(
      resolveTeacher("resnet32", { dataset: "cifar10", weightsDir: dir, download: false }),
      /cifar10_resnet32\.pth is missing and downloads are off/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

sharedTest(
  "resnet110 has no pinned hash: a download is kept only if it loads strictly as resnet110",
  async () => {
    const notResnet110 = await Deno.readFile(new URL("teachers/cifar100/resnet56.pth", SHARED_DIR));
    const dir = await Deno.makeTempDir();
    try {
      await withMirror({ "teacher_models/CIFAR100/resnet110/model.pth": notResnet110 }, async (baseUrl) => {
        await assert.rejects(
          resolveTeacher("resnet110", { dataset: "cifar100", weightsDir: dir, download: true, baseUrl }),
          /resnet110/,
        );
      });
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
