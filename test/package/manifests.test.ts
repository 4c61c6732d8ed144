// The container image and the Kubernetes manifests, read as files (no container runtime and no
// cluster here): what they must carry, the configuration they ship validated by tproxy's own
// loader, and the image's build steps held against the README's install steps.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/core/config/document.js';
import { DEFAULT_ADMIN_SOCKET } from '../../src/daemon/discover.js';

const read = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

interface Probe {
  httpGet: { path: string; port: number };
}
interface Container {
  name: string;
  image: string;
  args: string[];
  securityContext: { runAsNonRoot: boolean; runAsUser: number; allowPrivilegeEscalation: boolean; capabilities: { drop: string[]; add: string[] } };
  livenessProbe: Probe;
  readinessProbe: Probe;
  lifecycle?: { preStop?: { exec: { command: string[] } } };
  volumeMounts: { name: string; mountPath: string; subPath?: string }[];
}
interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { template: { metadata: { annotations: Record<string, string> }; spec: { hostNetwork: boolean; containers: Container[]; volumes: { name: string; configMap?: { name: string } }[] } } };
}

function manifests(): Manifest[] {
  return ['deploy/kubernetes/daemonset.yaml', 'deploy/kubernetes/configmap.yaml'].flatMap((file) =>
    parseAllDocuments(read(file)).map((doc) => {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      return doc.toJS() as Manifest;
    }),
  );
}

/** The shell lines of the README's Install code block. */
function readmeInstall(): string[] {
  const section = read('README.md').split(/^## Install$/m)[1]?.split(/^## /m)[0] ?? '';
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

describe('Kubernetes manifests', () => {
  const all = manifests();
  const ds = all.find((m) => m.kind === 'DaemonSet');
  const cm = all.find((m) => m.kind === 'ConfigMap');
  const pod = ds?.spec?.template;
  const container = pod?.spec.containers[0] as Container;
  const config = loadConfig({ file: 'configmap.yaml tproxy.yaml', text: cm?.data?.['tproxy.yaml'] ?? '' });

  it('has a DaemonSet on the host network, a ConfigMap, in one namespace', () => {
    assert.ok(ds && cm);
    assert.equal(pod?.spec.hostNetwork, true);
    assert.equal(ds.metadata.namespace, cm.metadata.namespace);
    assert.ok(all.some((m) => m.kind === 'Namespace' && m.metadata.name === ds.metadata.namespace));
  });

  it('runs as a non-root user with NET_ADMIN and NET_BIND_SERVICE only', () => {
    const sc = container.securityContext;
    assert.equal(sc.runAsNonRoot, true);
    assert.notEqual(sc.runAsUser, 0);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_BIND_SERVICE'] });
    // File capabilities (the image's entrypoint) are ignored under no_new_privs.
    assert.equal(sc.allowPrivilegeEscalation, true);
    assert.equal(sc.runAsUser, Number(/useradd [^\n]*--uid (\d+)/.exec(read('Dockerfile'))?.[1]), 'the image\'s tproxy user');
  });

  it('probes /healthz for liveness and /readyz for readiness on the metrics port of the shipped configuration', () => {
    const port = config.metrics.listen?.port;
    assert.equal(port, 9464);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port });
    assert.notEqual(config.metrics.listen?.host, '127.0.0.1', 'the kubelet probes the node address');
  });

  it('carries the Prometheus scrape annotations for that port', () => {
    assert.deepEqual(pod?.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(config.metrics.listen?.port), 'prometheus.io/path': '/metrics' });
  });

  it('mounts the ConfigMap as a directory (updates arrive) and watches the file it runs with', () => {
    const mount = container.volumeMounts.find((m) => pod?.spec.volumes.find((v) => v.name === m.name)?.configMap?.name === cm?.metadata.name);
    assert.ok(mount, 'the ConfigMap is mounted');
    assert.equal(mount.subPath, undefined, 'a subPath mount never sees ConfigMap updates');
    const file = container.args[container.args.indexOf('--config') + 1];
    assert.equal(file, `${mount.mountPath}/tproxy.yaml`);
    assert.equal(config.reload.watch, true);
  });

  it('drains before it stops, on the admin socket the configuration opens', () => {
    assert.equal(config.admin.socket, DEFAULT_ADMIN_SOCKET);
    const preStop = container.lifecycle?.preStop?.exec.command.join(' ') ?? '';
    assert.match(preStop, new RegExp(`tproxy drain --socket ${config.admin.socket}`));
    assert.ok(container.volumeMounts.some((m) => m.mountPath === '/run/tproxy'), 'a writable /run/tproxy for the socket');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const runs = [...dockerfile.matchAll(/^RUN ((?:.*\\\n)*.*)$/gm)].map((m) => (m[1] as string).replace(/\\\n/g, ' '));

  it('builds on a Node.js LTS image the package supports', () => {
    const bases = [...dockerfile.matchAll(/^FROM node:(\d+)-/gm)].map((m) => Number(m[1]));
    assert.ok(bases.length >= 1);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    for (const major of bases) {
      assert.equal(major % 2, 0, 'an even (LTS) line');
      assert.match(engines, new RegExp(`\\^${major}\\.`), `package.json engines allows Node ${major}`);
    }
  });

  it('follows the README install steps: npm pack in a clone, then npm install -g of the tarball', () => {
    const install = readmeInstall();
    assert.ok(install.some((l) => /^npm install -g \.\/tproxy-[\d.]+\.tgz$/.test(l)), `README installs a tarball: ${install.join(' | ')}`);
    assert.match(read('README.md').split(/^## Install$/m)[1] ?? '', /`npm pack`/);
    assert.ok(runs.some((r) => /\bnpm ci\b.*&& npm pack\b/.test(r)), 'the build stage packs');
    assert.ok(runs.some((r) => /\bnpm install -g \S*tproxy\S*\.tgz/.test(r)), 'the image installs the tarball globally');
  });

  it('installs nft and ip, and hands over the two capabilities as ambient ones to a non-root user', () => {
    assert.ok(runs.some((r) => /apt-get install .*\bnftables\b.*\biproute2\b/.test(r)));
    assert.match(dockerfile, /^USER tproxy:tproxy$/m);
    assert.match(dockerfile, /setcap cap_net_admin,cap_net_bind_service\+ep \/usr\/local\/lib\/tproxy\/caps/);
    // The same flags as the README's "Running as a service, without root" (which may live under docs/).
    const readmeFlags = /--inh-caps=\+net_admin,\+net_bind_service --ambient-caps=\+net_admin,\+net_bind_service/;
    const docs = readdirSync(new URL('../../../docs/', import.meta.url)).filter((f) => f.endsWith('.md')).map((f) => read(`docs/${f}`));
    assert.ok([read('README.md'), ...docs].some((text) => readmeFlags.test(text)), 'the README (or docs/) gives these setpriv flags');
    assert.match(dockerfile, /ENTRYPOINT \["\/usr\/local\/lib\/tproxy\/caps", "--inh-caps=\+net_admin,\+net_bind_service", "--ambient-caps=\+net_admin,\+net_bind_service", "--", "tproxy"\]/);
  });
});
