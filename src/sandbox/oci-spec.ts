/**
 * The part of the OCI runtime spec (config.json) kiln generates. Field names
 * are the spec's; see https://github.com/opencontainers/runtime-spec.
 */

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface OciRlimit {
  type: string;
  /** Bigint so RLIM_INFINITY (2^64-1) survives serialisation exactly. */
  hard: bigint;
  soft: bigint;
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
}

export interface OciSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: Array<{ index: number; value: number; valueTwo?: number; op: string }>;
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls: OciSeccompSyscall[];
}

export interface OciResources {
  devices: Array<{ allow: boolean; access: string; type?: string; major?: number; minor?: number }>;
  memory?: { limit?: number; swap?: number };
  cpu?: { quota?: number; period?: number };
  pids?: { limit: number };
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    namespaces: Array<{ type: string; path?: string }>;
    /** Rootless mode: the container's own user namespace. */
    uidMappings?: OciIdMapping[];
    gidMappings?: OciIdMapping[];
    /** Empty when the runtime must not touch cgroups (rootless without delegation). */
    cgroupsPath?: string;
    resources?: OciResources;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
  };
}
