/**
 * sandbox/ — the RUN sandbox: overlay root file systems, the OCI runtime
 * bundle (namespaces, capabilities, seccomp, limits), runc, RUN --mount
 * materialisation, output capture and cleanup of whatever a killed build left.
 * It runs a given argv; what a Dockerfile asked for is steps/' business.
 * May import: errors/, fs/, image/, layer/, rootless/, store/, sys/.
 */
export { runSandbox, type SandboxRequest, type SandboxResult, type UpperDiff } from './sandbox.js';
export { sweepMounts, type SweepReport } from './scratch.js';
export { mountOverlay, unmount, overlayOptions, readMountinfo, mountsUnder } from './mount.js';
export { resolveUser, type ResolvedUser } from './user.js';
export { buildSpec, serializeSpec, type BundleSpecInput, type NetworkMode, type ResourceLimits } from './bundle.js';
export { listContainers, type RuntimeOptions } from './runtime.js';
export type { CgroupUsage } from './cgroups.js';
export type { OutputListener, OutputStream } from './output.js';
export type { Ulimit } from './rlimits.js';
export type { RunMountSpec, BindMountSpec, RootedSource, CacheMountSpec, TmpfsMountSpec, SecretMountSpec, SshMountSpec, FileMountSpec } from './run-mounts.js';
export { cacheDirName, type CacheSharing } from './cache-mounts.js';
