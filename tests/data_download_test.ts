import assert from "node:assert/strict";
import { bytesDigest, fileDigest, fileMatches } from "../lib/data/checksum.ts";
import { DataError } from "../lib/data/dataset.ts";
import { ensureFile } from "../lib/data/download.ts";

const PAYLOAD = Uint8Array.from({ length: 700_000 }, (_, i) => (i * 31 + (i >> 9)) & 255);
const MD5 = bytesDigest(PAYLOAD, "md5");
const SHA256 = bytesDigest(PAYLOAD, "sha256");

/** A local server: /file.bin serves PAYLOAD, anything else is 404. */
async function withServer(fn: (base: string, hits: Map<string, number>) => Promise<void>): Promise<void> {
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path === "/file.bin") {
      return new Response(PAYLOAD, { headers: { "content-length": String(PAYLOAD.length) } });
    }
    return new Response("no such file", { status: 404, statusText: "Not Found" });
  });
  const dir = await Deno.makeTempDir();
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, hits);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** A raw TCP server that promises PAYLOAD.length bytes, sends 1000 and hangs up. */
function cutConnectionServer(): { url: string; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(4096));
      const head = `HTTP/1.1 200 OK\r\ncontent-length: ${PAYLOAD.length}\r\nconnection: close\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(PAYLOAD.subarray(0, 1000));
      conn.close();
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      await served.catch(() => {});
    },
  };
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test("ensureFile downloads, verifies (md5 and sha256), reports progress, then reuses the file", async () => {
  await withServer(async (base, hits) => {
    const dir = await Deno.makeTempDir();
    try {
      const dest = `${dir}/sub/archive.bin`;
      const progress: [number, number | null][] = [];
      const got = await ensureFile(`${base}/file.bin`, dest, { md5: MD5.toUpperCase() }, {
        onProgress: (b, t) => progress.push([b, t]),
      });
      assert.equal(got, dest);
      assert.deepEqual(await Deno.readFile(dest), PAYLOAD);
      assert.ok(progress.length >= 2, `progress events: ${progress.length}`);
      assert.deepEqual(progress.at(-1), [PAYLOAD.length, PAYLOAD.length]);
      for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0]);
      assert.deepEqual(await listDir(`${dir}/sub`), ["archive.bin"], "no temporary file left behind");

      // Present with the right checksum: no request is made.
      await ensureFile(`${base}/file.bin`, dest, { sha256: SHA256 });
      assert.equal(hits.get("/file.bin"), 1);
      assert.equal(await fileDigest(dest, "sha256"), SHA256);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("ensureFile replaces a present file whose checksum is wrong", async () => {
  await withServer(async (base, hits) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/f.bin`, "stale");
      await ensureFile(`${base}/file.bin`, `${dir}/f.bin`, { sha256: SHA256 });
      assert.equal(hits.get("/file.bin"), 1);
      assert.ok(await fileMatches(`${dir}/f.bin`, { md5: MD5 }));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("checksum mismatch: error names both values, the temp file is deleted, an existing file is kept", async () => {
  await withServer(async (base) => {
    const dir = await Deno.makeTempDir();
    try {
      const wrong = "0123456789abcdef0123456789abcdef";
      await assert.rejects(
        ensureFile(`${base}/file.bin`, `${dir}/new.bin`, { md5: wrong }),
        (e) =>
          e instanceof DataError &&
          e.message === `Checksum mismatch for ${base}/file.bin: expected md5 ${wrong}, got ${MD5} ` +
              `(${PAYLOAD.length} bytes, download discarded)`,
      );
      assert.deepEqual(await listDir(dir), []);

      await Deno.writeTextFile(`${dir}/old.bin`, "previous content");
      await assert.rejects(
        ensureFile(`${base}/file.bin`, `${dir}/old.bin`, { sha256: "ab".repeat(32) }),
        /Checksum mismatch/,
      );
      assert.equal(await Deno.readTextFile(`${dir}/old.bin`), "previous content");
      assert.deepEqual(await listDir(dir), ["old.bin"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("HTTP errors, broken transfers and unreachable hosts name the URL and how to use a local copy", async () => {
  await withServer(async (base) => {
    const dir = await Deno.makeTempDir();
    try {
      const hint = "Put cifar-100-binary.tar.gz in a folder and pass --data-dir <folder>.";
      await assert.rejects(
        ensureFile(`${base}/missing`, `${dir}/m.bin`, { md5: MD5 }, { hint }),
        (e) =>
          e instanceof DataError &&
          e.message === `Could not download ${base}/missing: HTTP 404 Not Found. ${hint}`,
      );
      const cut = cutConnectionServer();
      try {
        await assert.rejects(
          ensureFile(`${cut.url}/c.bin`, `${dir}/c.bin`, { md5: MD5 }),
          (e) =>
            e instanceof DataError && e.message.startsWith(`Could not download ${cut.url}/c.bin: `) &&
            e.message.endsWith(`To use a local copy, put the file at ${dir}/c.bin.`),
        );
      } finally {
        await cut.close();
      }
      assert.deepEqual(await listDir(dir), [], "no partial file left behind");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  // A port nobody listens on: take one from a server that is then shut down.
  const probe = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response());
  const port = probe.addr.port;
  await probe.shutdown();
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      ensureFile(`http://127.0.0.1:${port}/x.tar.gz`, `${dir}/x.tar.gz`, { md5: MD5 }, {
        hint: "Use --data-dir <folder>.",
      }),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(`Could not download http://127.0.0.1:${port}/x.tar.gz: `) &&
        e.message.endsWith(". Use --data-dir <folder>.") && !e.message.includes("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A raw TCP server that accepts and then says nothing (`headers: false`), or sends headers and 1000 bytes and stalls. */
function stallingServer(headers: boolean): { url: string; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const served = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      await conn.read(new Uint8Array(4096));
      if (!headers) continue;
      const head = `HTTP/1.1 200 OK\r\ncontent-length: ${PAYLOAD.length}\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      await conn.write(PAYLOAD.subarray(0, 1000));
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await served.catch(() => {});
    },
  };
}

Deno.test("a server that never answers, or stalls mid-transfer, is given up after the connect / idle timeout; an abort stops it at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [label, headers, opts, want] of [
        [
          "connect timeout",
          false,
          { connectTimeoutMs: 400 },
          /no response within 0\.4 s \(connect timeout\)/,
        ],
        [
          "idle timeout",
          true,
          { idleTimeoutMs: 400 },
          /no data for 0\.4 s \(idle timeout\) after 1000 bytes/,
        ],
      ] as const
    ) {
      const server = stallingServer(headers);
      const t0 = performance.now();
      try {
        await assert.rejects(
          ensureFile(`${server.url}/s.bin`, `${dir}/s.bin`, { md5: MD5 }, opts),
          (e) => e instanceof DataError && want.test(e.message) && e.message.includes(`${server.url}/s.bin`),
        );
      } finally {
        await server.close();
      }
      const took = performance.now() - t0;
      console.log(`${label}: refused after ${took.toFixed(0)} ms`);
      assert.ok(took < 10_000, `${label} took ${took} ms`);
    }
    // Ctrl-C (an aborted signal) stops a silent connection at once, well before any timeout.
    const server = stallingServer(false);
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 200);
    try {
      await assert.rejects(
        ensureFile(`${server.url}/s.bin`, `${dir}/s.bin`, { md5: MD5 }, { signal: ac.signal }),
        (e) => e instanceof DataError && /: interrupted\./.test(e.message),
      );
    } finally {
      await server.close();
    }
    const took = performance.now() - t0;
    console.log(`abort: stopped ${(took - 200).toFixed(0)} ms after the signal`);
    assert.ok(took < 5_000, `abort took ${took} ms`);
    assert.deepEqual(await listDir(dir), [], "no partial file left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("temporary files of a killed download (dead pid) are removed; a live writer's are kept", async () => {
  await withServer(async (base) => {
    const dir = await Deno.makeTempDir();
    try {
      const dead = `f.bin.999999999.0123abcd.download.tmp`; // no such pid
      const live = `f.bin.${Deno.pid}.89abcdef.download.tmp`;
      await Deno.writeTextFile(`${dir}/${dead}`, "half");
      await Deno.writeTextFile(`${dir}/${live}`, "in flight");
      await ensureFile(`${base}/file.bin`, `${dir}/f.bin`, { md5: MD5 });
      assert.deepEqual(await listDir(dir), ["f.bin", live]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
