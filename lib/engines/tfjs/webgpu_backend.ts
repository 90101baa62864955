/**
 * The tfjs `webgpu` backend on Deno's built-in WebGPU (`navigator.gpu`): finds an adapter, tells
 * hardware from software adapters (Mesa's llvmpipe/lavapipe, SwiftShader, any adapter flagged
 * `isFallbackAdapter`), and registers a tfjs backend factory that opens a device on the adapter
 * it judged, so what was checked is what runs.
 *
 * Software adapters compute correctly but far slower than the CPU engines: they are used only
 * when asked for explicitly (`allowSoftware`, or the environment variable
 * {@link WEBGPU_ALLOW_SOFTWARE_ENV}`=1`), which is how the test suite exercises this path on
 * machines without a GPU.
 *
 * @example
 * ```ts
 * import { probeWebgpuAdapter } from "./webgpu_backend.ts";
 * const probe = await probeWebgpuAdapter();
 * console.log(probe.adapter === null || typeof probe.description === "string"); // true
 * ```
 * @module
 */

import { loadTfjsWebgpuBackend, type Tf } from "../../deps.ts";

/** Environment variable that lets an explicit `webgpu` request run on a software adapter. */
export const WEBGPU_ALLOW_SOFTWARE_ENV = "ORACLE_KD_WEBGPU_ALLOW_SOFTWARE";

/** What to install for a hardware WebGPU adapter (shown in errors). */
export const WEBGPU_INSTALL_HINT =
  "install the Vulkan loader and your GPU's Vulkan driver (Debian/Ubuntu: `apt-get install libvulkan1` " +
  "plus the NVIDIA driver's Vulkan ICD, or mesa-vulkan-drivers for AMD/Intel; check with " +
  "`vulkaninfo --summary`), or use --engine onnxruntime";

/** Thrown when the webgpu engine cannot run: no adapter, or only a software one not allowed. */
export class WebgpuUnavailableError extends Error {
  /** Error name. */
  override name = "WebgpuUnavailableError";
}

/** What {@link probeWebgpuAdapter} found. */
export interface WebgpuProbe {
  /** The adapter (null when there is none). */
  adapter: GPUAdapter | null;
  /** One-line description: device name, vendor, architecture (or why there is no adapter). */
  description: string;
  /** Whether the adapter is a software (CPU) implementation. */
  software: boolean;
}

/** Device names of software WebGPU/Vulkan implementations. */
const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render/i;
/** Vulkan vendor id Mesa gives its CPU drivers (VK_VENDOR_ID_MESA). */
const MESA_SOFTWARE_VENDOR = "65541";

/**
 * Whether an adapter with this info is a software implementation: flagged as a fallback adapter,
 * or named like one (llvmpipe, lavapipe, SwiftShader, ...).
 *
 * @example
 * ```ts
 * import { isSoftwareAdapter } from "./webgpu_backend.ts";
 * console.log(isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" })); // true
 * console.log(isSoftwareAdapter({ description: "NVIDIA H100 80GB HBM3", vendor: "4318" })); // false
 * console.log(isSoftwareAdapter({ description: "", isFallbackAdapter: true })); // true
 * ```
 */
export function isSoftwareAdapter(
  info: { description?: string; device?: string; vendor?: string; isFallbackAdapter?: boolean },
  adapterFlag = false,
): boolean {
  if (adapterFlag || info.isFallbackAdapter === true) return true;
  if (info.vendor === MESA_SOFTWARE_VENDOR) return true;
  return SOFTWARE_NAMES.test(`${info.description ?? ""} ${info.device ?? ""}`);
}

let probed: Promise<WebgpuProbe> | undefined;

/**
 * Asks Deno's WebGPU for its high-performance adapter (once per process) and judges it.
 * Never throws: a missing `navigator.gpu` or a refused request give `adapter: null` and the reason.
 *
 * @example
 * ```ts
 * import { probeWebgpuAdapter } from "./webgpu_backend.ts";
 * const { adapter, software, description } = await probeWebgpuAdapter();
 * console.log(adapter ? `${software ? "software" : "hardware"}: ${description}` : `none: ${description}`);
 * ```
 */
export function probeWebgpuAdapter(): Promise<WebgpuProbe> {
  probed ??= (async (): Promise<WebgpuProbe> => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (!gpu) return { adapter: null, description: "this Deno has no navigator.gpu", software: false };
    let adapter: GPUAdapter | null = null;
    // Without XDG_RUNTIME_DIR, the Wayland client library that adapter discovery loads prints
    // "error: XDG_RUNTIME_DIR is invalid or not set" twice (harmless, but it reads as a failure):
    // give it an absolute path with no display socket for the duration of the request.
    const xdg = envGet("XDG_RUNTIME_DIR");
    if (xdg === undefined) envSet("XDG_RUNTIME_DIR", "/nonexistent-xdg-runtime-dir");
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      const why = String((e as Error).message ?? e).split("\n")[0];
      return { adapter: null, description: `requestAdapter failed: ${why}`, software: false };
    } finally {
      if (xdg === undefined) envSet("XDG_RUNTIME_DIR", undefined);
    }
    if (!adapter) return { adapter: null, description: "no WebGPU adapter found", software: false };
    const info = (adapter.info ?? {}) as GPUAdapterInfo & { isFallbackAdapter?: boolean; device?: string };
    const flag = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
    const name = info.description || info.device || `vendor ${info.vendor || "?"}`;
    const extra = [info.architecture, flag || info.isFallbackAdapter ? "fallback adapter" : ""]
      .filter(Boolean).join(", ");
    return {
      adapter,
      description: extra ? `${name}, ${extra}` : name,
      software: isSoftwareAdapter(info, flag),
    };
  })();
  return probed;
}

/**
 * Whether the environment variable {@link WEBGPU_ALLOW_SOFTWARE_ENV} is `1` (false without env access).
 *
 * @example
 * ```ts
 * import { softwareAllowedByEnv } from "./webgpu_backend.ts";
 * console.log(typeof softwareAllowedByEnv()); // boolean
 * ```
 */
export function softwareAllowedByEnv(): boolean {
  return envGet(WEBGPU_ALLOW_SOFTWARE_ENV) === "1";
}

/** An environment variable, or undefined (also without env permission). */
function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Sets (or, with undefined, deletes) an environment variable; a no-op without env permission. */
function envSet(name: string, value: string | undefined): void {
  try {
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  } catch { /* no env permission: the messages stay */ }
}

let warned = false;
let registeredFor: GPUAdapter | null = null;

/**
 * Checks the adapter and registers the tfjs `webgpu` backend on it (the caller then calls
 * `tf.setBackend("webgpu")`). Throws {@link WebgpuUnavailableError} with one line when there is no
 * adapter, or when the only one is software and `allowSoftware` (or the environment variable) is
 * not set; an allowed software adapter gets a one-line warning on stderr, once.
 *
 * @example
 * ```ts
 * import { loadTfjsCore } from "../../deps.ts";
 * import { installWebgpuBackend } from "./webgpu_backend.ts";
 * const tf = await loadTfjsCore();
 * try {
 *   console.log(await installWebgpuBackend(tf, { allowSoftware: false })); // the adapter's description
 * } catch (e) {
 *   console.log((e as Error).name); // WebgpuUnavailableError (no hardware adapter here)
 * }
 * ```
 */
export async function installWebgpuBackend(tf: Tf, opts: { allowSoftware?: boolean } = {}): Promise<string> {
  const probe = await probeWebgpuAdapter();
  if (!probe.adapter) {
    throw new WebgpuUnavailableError(`engine webgpu: ${probe.description}; ${WEBGPU_INSTALL_HINT}`);
  }
  const allow = opts.allowSoftware ?? softwareAllowedByEnv();
  if (probe.software && !allow) {
    throw new WebgpuUnavailableError(
      `engine webgpu: the only WebGPU adapter is a software one (${probe.description}), slower than the ` +
        `CPU engines: ${WEBGPU_INSTALL_HINT}; or set ${WEBGPU_ALLOW_SOFTWARE_ENV}=1 to use it anyway (tests do)`,
    );
  }
  if (probe.software && !warned) {
    warned = true;
    console.warn(
      `warning: engine webgpu runs on a software adapter (${probe.description}): correct, but slower than the CPU engines`,
    );
  }
  if (registeredFor !== probe.adapter) {
    const { WebGPUBackend } = await loadTfjsWebgpuBackend();
    const adapter = probe.adapter;
    // Replace the package's own factory (which requests its own adapter) by one on the adapter judged here.
    if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
    tf.registerBackend("webgpu", async () => {
      const l = adapter.limits;
      const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
        ? ["timestamp-query"]
        : [];
      // The same limits tfjs-backend-webgpu asks for: the adapter's maxima, not WebGPU's defaults.
      const device = await adapter.requestDevice({
        requiredFeatures,
        requiredLimits: {
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        },
      });
      // deno-lint-ignore no-explicit-any
      return new WebGPUBackend(device as any, adapter.info as any);
    }, 3);
    registeredFor = adapter;
  }
  return probe.description;
}
