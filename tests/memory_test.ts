/**
 * A paper-default distill run (full-size CIFAR-100 in memory, resnet56 -> resnet20, batch 64,
 * the epoch's evaluation over all 10,000 test images) stays under 2 GiB resident: runs
 * bench/memory.ts, which measures `cli.ts distill` in a child process (about 30 s).
 * @module
 */

import assert from "node:assert/strict";

const linux = Deno.build.os === "linux";
Deno.test({
  name: "a paper-default distill run on full-size CIFAR-100 peaks under 2 GiB resident" +
    (linux ? "" : " [reads /proc: Linux only]"),
  ignore: !linux,
  fn: async () => {
    const script = new URL("../bench/memory.ts", import.meta.url).pathname;
    // The teacher's own test check is left out here for time (bench/memory.ts runs it by
    // default); its sessions are smaller than the training step's.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--steps", "10", "--no-teacher-test", "--limit-mb", "2048", "--json"],
      stderr: "inherit",
    }).output();
    const report = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    console.log(
      `peak ${report.peak_rss_mb} MiB resident, ${report.seconds} s, peak after: ${report.peak_after}`,
    );
    assert.equal(report.exit_code, 0, `the distill run failed: ${report.error}`);
    assert.equal(report.train_images, 50_000);
    assert.equal(report.test_images, 10_000);
    // The data set alone is about 180 MB, so a lower reading means nothing was measured.
    assert.ok(report.peak_rss_mb > 300, `implausible peak ${report.peak_rss_mb} MiB`);
    assert.ok(report.peak_rss_mb < 2048, `peak ${report.peak_rss_mb} MiB resident, above 2 GiB`);
    assert.ok(out.success, "bench/memory.ts exited non-zero");
  },
});
