// The proxy our registry client uses reaches BuildKit too. buildx's docker-container and
// kubernetes drivers pass no proxy settings to the BuildKit they start (BX driver/*/factory.go:
// only `env.*` driver options become its environment), so a job behind a proxy resolves the engine
// image and then fails every build pull. When HTTP(S)_PROXY is set, the builder carries it as
// `env.*` driver options in both spellings (Go reads the upper case first, other tools the lower);
// they are driver options like any other, so they count in the builder's name. NO_PROXY keeps
// loopback and every mirror our client reaches directly direct for BuildKit too.
//
// A proxy URL with a user and password would land in `buildx create`'s argv, buildx's store,
// `buildx inspect` and the container's environment: refused (exit 2), naming the variable, never
// its value. An `env.*` option the user set explicitly wins and is never checked or replaced.
import type { Config } from '../config/schema.js';
import { ConfigError, type ConfigProblem } from '../errors.js';

const LOOPBACK = ['localhost', '127.0.0.1', '::1'];

/** The variable (as spelled in the environment) and its value, upper case first, as Go reads it. */
function variable(env: Record<string, string | undefined>, name: string): { name: string; value: string } | undefined {
  for (const spelled of [name, name.toLowerCase()]) {
    const value = env[spelled]?.trim();
    if (value) return { name: spelled, value };
  }
  return undefined;
}

/** Whether a proxy URL carries credentials (`http://user:pass@proxy:3128`, also without a scheme). */
export function proxyHasCredentials(value: string): boolean {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    return Boolean(url.username || url.password);
  } catch {
    return /@/.test(value);
  }
}

/**
 * The `env.*` driver options that hand the environment's proxy to BuildKit (empty when no proxy is
 * set, or for drivers that start no BuildKit of their own). `direct(host)`: whether our client
 * reaches that mirror host without the proxy.
 */
export function proxyDriverOpts(config: Pick<Config, 'builder' | 'mirrors'>, env: Record<string, string | undefined>, direct: (host: string) => boolean): Record<string, string> {
  if (!['auto', 'docker-container', 'kubernetes'].includes(config.builder.driver)) return {};
  const http = variable(env, 'HTTP_PROXY');
  const https = variable(env, 'HTTPS_PROXY');
  if (!http && !https) return {};
  const userKeys = new Set(Object.keys(config.builder.driverOpts).map((k) => k.toLowerCase()));
  const explicit = (name: string): boolean => userKeys.has(`env.${name.toLowerCase()}`);
  const problems: ConfigProblem[] = [];
  const opts: Record<string, string> = {};
  for (const [name, found] of [['HTTP_PROXY', http], ['HTTPS_PROXY', https]] as const) {
    if (!found || explicit(name)) continue;
    if (proxyHasCredentials(found.value)) {
      problems.push({
        source: 'environment',
        path: found.name,
        message: `the proxy URL carries a user and password, which buildx would show in its argv, its store, buildx inspect and the BuildKit container's environment`,
      });
      continue;
    }
    opts[`env.${name}`] = found.value;
    opts[`env.${name.toLowerCase()}`] = found.value;
  }
  if (problems.length) {
    throw new ConfigError(problems, {
      hint: 'use a proxy that authenticates otherwise (by address, or a local forwarder without credentials in its URL), or set builder.driverOpts "env.https_proxy"/"env.http_proxy" yourself',
    });
  }
  if (Object.keys(opts).length && !explicit('NO_PROXY')) {
    const entries = (variable(env, 'NO_PROXY')?.value ?? '').split(/[\s,]+/).filter(Boolean);
    for (const h of [...LOOPBACK, ...config.mirrors.map((m) => m.host).filter(direct)]) if (!entries.includes(h)) entries.push(h);
    opts['env.NO_PROXY'] = entries.join(',');
    opts['env.no_proxy'] = entries.join(',');
  }
  return opts;
}

/** The configuration with the proxy driver options added (before the builder's name is derived). */
export async function withProxyDriverOpts(config: Config, env: Record<string, string | undefined>): Promise<Config> {
  if (!variable(env, 'HTTP_PROXY') && !variable(env, 'HTTPS_PROXY')) return config;
  const [{ proxyFor }, { endpointScheme }] = await Promise.all([import('../registry/http.js'), import('../registry/reference.js')]);
  const direct = (host: string): boolean => {
    const m = config.mirrors.find((x) => x.host === host)!;
    return !proxyFor(new URL(`${endpointScheme(m)}://${host}/`), env);
  };
  const opts = proxyDriverOpts(config, env, direct);
  if (!Object.keys(opts).length) return config;
  return { ...config, builder: { ...config.builder, driverOpts: { ...config.builder.driverOpts, ...opts } } };
}
