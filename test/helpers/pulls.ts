// "No registry was asked for the local image", from the registries' own access logs: a pull of a
// repository reads its manifest or a blob with GET. A HEAD is allowed — on the containerd image
// store, telling a local-only image from a pulled one means asking the registry whether the tag
// exists. The logs are settled first, so a request answered just now is counted.
import type { Test } from 'tap';
import type { RunningRegistry } from './registry.js';

export async function noPullOf(t: Test, registries: RunningRegistry[], repository: string): Promise<void> {
  await Promise.all(registries.map((r) => r.settle()));
  const read = new RegExp(`^GET /v2/${repository.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(manifests|blobs)/`);
  const pulls = registries.flatMap((r) => r.requestLog().filter((l) => read.test(l)).map((l) => `${r.host}: ${l}`));
  t.same(pulls, [], `no registry was asked for the content of ${repository} (manifest or blob GET)`);
}
