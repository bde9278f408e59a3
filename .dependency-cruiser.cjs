// The dependency graph of packages/gateway/src as a checked fact (issue #15): the parts (folders) and
// the edges allowed between them, the same table as README.md "Architecture". `npm run lint:deps`
// fails on any import outside the table and on any import cycle, between files or between parts.
// A part may always import its own files, Node's built-ins and its npm dependencies.

/** part → the parts it may import. The composition root (gateway.ts, main.ts, compose/) imports any part. */
const parts = {
  lib: [],
  config: ['lib'],
  authn: ['config', 'lib'],
  kube: ['config', 'lib'],
  policy: ['authn', 'config', 'kube', 'lib'],
  approvals: ['authn', 'config', 'kube', 'lib', 'policy'],
  store: ['approvals', 'config', 'lib'],
  audit: ['approvals', 'authn', 'config', 'kube', 'lib', 'policy', 'store'],
  probes: ['audit', 'config', 'kube', 'lib', 'proxy'],
  saml: ['audit', 'authn', 'config', 'lib'],
  proxy: ['approvals', 'audit', 'authn', 'config', 'kube', 'lib', 'policy'],
  pipeline: ['approvals', 'audit', 'authn', 'config', 'kube', 'lib', 'policy', 'proxy', 'store'],
  http: ['approvals', 'audit', 'authn', 'config', 'kube', 'lib', 'pipeline', 'proxy'],
  slack: ['approvals', 'audit', 'config', 'lib', 'store'],
  cli: [
    'approvals',
    'audit',
    'authn',
    'config',
    'gateway.ts',
    'kube',
    'lib',
    'pipeline',
    'policy',
    'probes',
    'proxy',
    'saml',
    'slack',
    'store',
  ],
};

// The parts themselves form no cycle either: checked here, when the configuration loads.
(function assertAcyclic() {
  const state = new Map();
  const visit = (part, path) => {
    if (state.get(part) === 'done') return;
    if (state.get(part) === 'visiting')
      throw new Error(`.dependency-cruiser.cjs: the parts form a cycle: ${[...path, part].join(' → ')}`);
    state.set(part, 'visiting');
    for (const next of parts[part] ?? []) visit(next, [...path, part]);
    state.set(part, 'done');
  };
  for (const part of Object.keys(parts)) visit(part, []);
})();

const src = '^packages/gateway/src/';
const target = (part) => (part.endsWith('.ts') ? `${src}${part.replace('.', '\\.')}$` : `${src}${part}/`);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import cycle between files (type-only and dynamic imports count)',
      from: {},
      to: { circular: true },
    },
    {
      name: 'policy-is-pure',
      severity: 'error',
      comment: 'policy/ decides on plain data: from kube/ only the request vocabulary, never a client; no npm package',
      from: { path: `${src}policy/` },
      to: { path: `${src}kube/(?!(request-info|authorization)\\.ts$)` },
    },
    {
      name: 'policy-has-no-npm-dependencies',
      severity: 'error',
      from: { path: `${src}policy/` },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'store-implements-the-approvals-port',
      severity: 'error',
      comment: 'store/ implements approvals/types.ts (ApprovalRepository) and imports nothing else of approvals/',
      from: { path: `${src}store/` },
      to: { path: `${src}approvals/(?!types\\.ts$)` },
    },
    {
      name: 'koa-at-the-edge',
      severity: 'error',
      comment:
        'Koa is the HTTP adapter: http/, slack/ (its receiver), the composition root, and two route bindings that predate the rule: approvals/http-api.ts (being moved to http/, issue #15) and saml/index.ts (the token endpoint).',
      from: { pathNot: `${src}(http/|slack/|compose/|approvals/http-api\\.ts$|saml/index\\.ts$)` },
      to: { path: '(^|/)node_modules/(koa|@koa/[^/]+)/' },
    },
  ],
  allowed: [
    { comment: 'within a part', from: { path: `${src}([^/]+)/` }, to: { path: `${src}$1/` } },
    {
      comment: 'Node built-ins and npm packages',
      from: {},
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer'] },
    },
    { comment: 'the composition root', from: { path: `${src}((gateway|main)\\.ts$|compose/)` }, to: { path: src } },
    ...Object.entries(parts).flatMap(([from, tos]) =>
      tos.map((to) => ({ comment: `${from} → ${to}`, from: { path: `${src}${from}/` }, to: { path: target(to) } })),
    ),
  ],
  allowedSeverity: 'error',
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['source', 'import', 'require', 'node', 'default'],
      extensions: ['.ts', '.cts', '.js'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
