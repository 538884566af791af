import { readFileSync } from 'node:fs';
import t from 'tap';
import { formatBytes, parseHumanSize, parseVolumeUsage } from '../../src/docker/volumes.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/docker/${name}`, import.meta.url), 'utf8');

t.test('docker system df -v (CLI 28.2.2 and 20.10 on dockerd 20.10, captured): the volume table', async (t) => {
  for (const file of ['system-df-v-28.2.2.txt', 'system-df-v-20.10.txt']) {
    const sizes = parseVolumeUsage(fixture(file));
    t.same([...sizes], [['buildx_buildkit_buildx-bootstrap-0a1b2c3d0_state', 0], ['other', 0]], file);
  }
});

t.test('sizes as go-units HumanSize writes them, and only from the volume table', async (t) => {
  const text = fixture('system-df-v-28.2.2.txt').replace('0a1b2c3d0_state   0         0B', '0a1b2c3d0_state   1         1.234GB');
  t.equal(parseVolumeUsage(text).get('buildx_buildkit_buildx-bootstrap-0a1b2c3d0_state'), 1_234_000_000);
  t.same([parseHumanSize('36 B'), parseHumanSize('12.5kB'), parseHumanSize('3MB'), parseHumanSize('n/a')], [36, 12_500, 3_000_000, undefined]);
  t.same([formatBytes(0), formatBytes(1_500), formatBytes(2_345_000_000)], ['0 B', '1.5 kB', '2.3 GB']);
});
