// A real one-node Slurm cluster on localhost (munged, slurmctld and slurmd with a generated key
// and slurm.conf in a temporary folder) runs a tiny synthetic sweep through `--executor slurm`:
// cancelled half way with scancel, submitted again, finished, reported. Needs Debian's slurm-wlm
// and munge (installed by .ci/run) and root (slurmd starts jobs as their user); without them the
// test is reported as ignored and says why. Daemons that fail to start fail the test.
import assert from "node:assert/strict";
import * as path from "node:path";
import { runSweepCli } from "../app/sweep/cli.ts";
import { loadPlan, readRecord, sweepState } from "../app/sweep/state.ts";

const BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"];

/** Why Slurm cannot run here, or null when it can (a quick look for the binaries and root). */
function slurmUnavailable(): string | null {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"].filter((d) => d);
  const missing = BINARIES.filter((b) =>
    !dirs.some((d) => {
      try {
        return Deno.statSync(path.join(d, b)).isFile;
      } catch {
        return false;
      }
    })
  );
  if (missing.length) return `${missing.join(", ")} not installed (apt-get install slurm-wlm munge)`;
  if (Deno.uid() !== 0) return "not root (slurmd runs jobs as their user)";
  return null;
}

const why = slurmUnavailable();

function which(b: string): string {
  for (const d of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(path.join(d, b)).isFile) return path.join(d, b);
    } catch { /* next */ }
  }
  return b;
}

async function sh(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await new Deno.Command(which(cmd), { args, env, stdout: "piped", stderr: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${err.trim() || out.trim()}`);
  return out;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function tail(file: string, n = 5): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trim().split("\n").slice(-n).join(" / ");
  } catch {
    return "(no log)";
  }
}

async function waitFor(
  what: string,
  ok: () => Promise<boolean>,
  timeoutMs: number,
  onTimeout: () => Promise<string> = () => Promise.resolve(""),
) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}. ${await onTimeout()}`);
}

/** Starts munged, slurmctld and slurmd in `dir`; returns the env for clients and a stop function. */
async function startCluster(
  dir: string,
): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const pids: string[] = [];
  const stop = async () => {
    for (const f of pids.reverse()) {
      try {
        const pid = Number((await Deno.readTextFile(f)).trim());
        if (pid > 0) Deno.kill(pid, "SIGTERM");
      } catch { /* not started or gone */ }
    }
    await new Promise((r) => setTimeout(r, 1000));
  };
  try {
    await Deno.mkdir(`${dir}/munge`, { mode: 0o700 });
    const key = crypto.getRandomValues(new Uint8Array(1024));
    await Deno.writeFile(`${dir}/munge/munge.key`, key, { mode: 0o400 });
    pids.push(`${dir}/munge/munged.pid`);
    await sh("munged", [
      `--key-file=${dir}/munge/munge.key`,
      `--socket=${dir}/munge/munge.socket`,
      `--pid-file=${dir}/munge/munged.pid`,
      `--log-file=${dir}/munge/munged.log`,
      `--seed-file=${dir}/munge/munged.seed`,
      "--force",
    ]);
    const mem = Math.floor(Deno.systemMemoryInfo().total / 2 ** 20 * 0.8);
    const cpus = navigator.hardwareConcurrency;
    await Deno.mkdir(`${dir}/state`);
    await Deno.mkdir(`${dir}/spool`);
    const conf = [
      "ClusterName=okdtest",
      "SlurmctldHost=localhost",
      "SlurmUser=root",
      "SlurmdUser=root",
      `SlurmctldPort=${freePort()}`,
      `SlurmdPort=${freePort()}`,
      "AuthType=auth/munge",
      `AuthInfo=socket=${dir}/munge/munge.socket`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "SchedulerType=sched/builtin",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "JobCompType=jobcomp/none",
      "MpiDefault=none",
      "ReturnToService=2",
      "KillWait=10",
      `NodeName=localhost CPUs=${cpus} RealMemory=${mem} State=UNKNOWN`,
      "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
      "",
    ].join("\n");
    await Deno.writeTextFile(`${dir}/slurm.conf`, conf);
    const env = { SLURM_CONF: `${dir}/slurm.conf` };
    pids.push(`${dir}/slurmctld.pid`);
    await sh("slurmctld", ["-i"], env);
    pids.push(`${dir}/slurmd.pid`);
    await sh("slurmd", ["-N", "localhost"], env);
    await waitFor(
      "the Slurm node to become idle",
      async () => (await sh("sinfo", ["-h", "-o", "%T"], env).catch(() => "")).trim() === "idle",
      60_000,
      async () =>
        `slurmctld: ${await tail(`${dir}/slurmctld.log`)}; slurmd: ${await tail(`${dir}/slurmd.log`)}; ` +
        `munged: ${await tail(`${dir}/munge/munged.log`)}`,
    );
    return { env, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

Deno.test({
  name: why
    ? `sweep slurm: a tiny sweep through a real one-node Slurm cluster (ignored: ${why})`
    : "sweep slurm: a tiny sweep through a real one-node Slurm cluster, cancelled and resubmitted",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "okd_slurm_" });
    await Deno.chmod(dir, 0o700);
    const cluster = await startCluster(dir);
    const prevConf = Deno.env.get("SLURM_CONF");
    Deno.env.set("SLURM_CONF", cluster.env.SLURM_CONF);
    try {
      const spec = `${dir}/tiny.yaml`;
      await Deno.writeTextFile(
        spec,
        [
          "name: slurm-tiny",
          "settings: {data: synthetic, epochs: 2, subset: 100, batch-size: 50}",
          "teachers:",
          "  t8: {student: resnet8, epochs: 1}",
          "pairs: [{teacher: '@t8', student: resnet8}]",
          "methods: [plain, oracle]",
          "axes: {seed: [0, 1]}",
          "",
        ].join("\n"),
      );
      const out = `${dir}/sweep`;
      const lines: string[] = [];
      const io = { stream: { write: (s: string) => lines.push(s) } };
      const args = [
        "run",
        spec,
        "--out",
        out,
        "--executor",
        "slurm",
        "--cpus-per-task",
        "1",
        "--max-parallel",
        "1",
        "--time",
        "00:10:00",
        "--sbatch-line",
        "--comment=oracle-kd-test",
      ];
      assert.equal(await runSweepCli(args, io), 0, lines.join(""));
      const m = lines.join("").match(/submitted 5 cells as job (\d+) \+ (\d+)/);
      assert.ok(m, lines.join(""));
      const jobs = [m[1], m[2]];
      // Submitting again while those jobs are queued would run cells twice: refused.
      const twice: string[] = [];
      assert.equal(await runSweepCli(args, { stream: { write: (s: string) => twice.push(s) } }), 1);
      const refused = twice.join("").match(/error: job ([\d ]+) of this sweep is still queued/);
      assert.ok(refused, twice.join(""));
      assert.deepEqual(refused[1].split(" ").sort(), [...jobs].sort());
      const scripts = (await Array.fromAsync(Deno.readDir(`${out}/slurm`))).map((e) => e.name);
      const script = await Deno.readTextFile(
        `${out}/slurm/${scripts.find((n) => n.endsWith("_teachers.sh"))}`,
      );
      assert.match(script, /#SBATCH --comment=oracle-kd-test/);
      assert.match(script, /#SBATCH --array=0%1/);
      assert.match(script, /sweep cell .* --index "\$SLURM_ARRAY_TASK_ID"/);

      const plan = await loadPlan(out);
      const logs = async () =>
        (await Array.fromAsync(Deno.readDir(`${out}/logs`))).map((e) => e.name).join(", ") + " | " +
        (await tail(`${dir}/slurmctld.log`, 3));
      // Cancel once the teacher and a first cell are done, with cells still to run.
      await waitFor(
        "a first cell to finish",
        async () => {
          const s = await sweepState(plan);
          return s.cells[0].status === "done" && s.cells.slice(1).some((c) => c.status === "done");
        },
        240_000,
        logs,
      );
      await sh("scancel", jobs, cluster.env);
      await waitFor(
        "the cancelled jobs to leave the queue",
        async () =>
          (await sh("squeue", ["-h", "-j", jobs.join(",")], cluster.env).catch(() => "")).trim() === "",
        60_000,
      );
      const mid = await sweepState(plan);
      assert.equal(mid.counts.running, 0, JSON.stringify(mid.cells));
      const doneBefore = mid.cells.filter((c) => c.status === "done").map((c) => c.name);
      assert.ok(doneBefore.length < 5, "the cancel came before the end");

      // Resubmitted: only the unfinished cells go; everything finishes.
      lines.length = 0;
      assert.equal(await runSweepCli(args, io), 0, lines.join(""));
      const again = lines.join("").match(/submitted (\d+) cells as job (\d+)/);
      assert.ok(again, lines.join(""));
      assert.equal(Number(again[1]), 5 - doneBefore.length);
      await waitFor(
        "the resubmitted cells to finish",
        async () => {
          const s = await sweepState(plan);
          return s.counts.done + s.counts.failed === 5 &&
            (await sh("squeue", ["-h", "-j", again[2]], cluster.env).catch(() => "")).trim() === "";
        },
        300_000,
        logs,
      );
      const end = await sweepState(plan);
      assert.equal(end.counts.done, 5, JSON.stringify(end.cells));
      for (const name of doneBefore) assert.equal((await readRecord(out, name))?.attempts, 1, name);
      const rec = await readRecord(out, "oracle_t8-resnet8_seed=1");
      assert.match(rec?.slurm ?? "", /^\d+_\d+$/);

      // status reads the run folders; the report is the same as for a local sweep.
      lines.length = 0;
      assert.equal(await runSweepCli(["status", out], io), 0);
      assert.match(lines.join(""), /sweep {4}5\/5 done, 0 running, 0 failed, 0 to run/);
      lines.length = 0;
      assert.equal(await runSweepCli(["report", out], io), 0);
      const md = await Deno.readTextFile(`${out}/results.md`);
      assert.match(md, /\| t8 -> resnet8 \| [\d.]+ ± [\d.]+ \(2\) \| [\d.]+ ± [\d.]+ \(2\) \|/);
      assert.ok((await Deno.stat(`${out}/results.png`)).size > 0);
    } finally {
      if (prevConf === undefined) Deno.env.delete("SLURM_CONF");
      else Deno.env.set("SLURM_CONF", prevConf);
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
