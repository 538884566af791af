// Platform strings (`os/arch[/variant]`) the way BuildKit compares them: containerd's
// `platforms.Normalize` spells architectures one way (`aarch64` → `arm64`, `x86_64` → `amd64`),
// drops the redundant `arm64/v8` variant and gives bare `arm` the `v7` default, so
// `linux/aarch64` and `linux/arm64/v8` are the same platform (containerd `platforms/database.go`).

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

function normalizeArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  switch (arch) {
    case 'i386':
      return { architecture: '386' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return variant === 'v1' || variant === undefined ? { architecture: 'amd64' } : { architecture: 'amd64', variant };
    case 'aarch64':
    case 'arm64':
      return variant === '8' || variant === 'v8' || variant === undefined ? { architecture: 'arm64' } : { architecture: 'arm64', variant };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm': {
      const v = variant === undefined ? 'v7' : /^\d+$/.test(variant) ? `v${variant}` : variant;
      return { architecture: 'arm', variant: v };
    }
    default:
      return variant === undefined ? { architecture: arch } : { architecture: arch, variant };
  }
}

/** Parses `os/arch[/variant]` (or a bare `arch`, taken as linux). Throws an Error saying what is wrong. */
export function parsePlatform(text: string): Platform {
  const trimmed = text.trim().toLowerCase();
  const parts = trimmed.split('/');
  if (!trimmed || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new Error(`invalid platform "${text}" (expected os/arch[/variant], e.g. linux/arm64)`);
  }
  let os = 'linux';
  let arch: string;
  let variant: string | undefined;
  if (parts.length === 1) {
    arch = parts[0]!;
  } else {
    os = parts[0] === 'macos' ? 'darwin' : parts[0]!;
    arch = parts[1]!;
    variant = parts[2];
  }
  return { os, ...normalizeArch(arch, variant) };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** `linux/aarch64` → `linux/arm64`; throws on a malformed value. */
export function normalizePlatform(text: string): string {
  return formatPlatform(parsePlatform(text));
}

/** The platform of this machine, the default build platform of a local builder. */
export function hostPlatform(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return normalizePlatform(`linux/${map[arch] ?? arch}`);
}

/** Splits repeated/comma-separated `--platform` values into a de-duplicated, normalised list. */
export function splitPlatforms(values: string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const item of value.split(',')) {
      const t = item.trim();
      if (!t) continue;
      const p = normalizePlatform(t);
      if (!out.includes(p)) out.push(p);
    }
  }
  return out;
}
