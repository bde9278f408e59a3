// The configuration rules that span sections (cluster and issuer references, static token cover,
// approvers' issuers), run on whatever parsed so they are reported alongside the rest.
import type { Config } from './types.js';
import { didYouMean } from './suggest.js';
import { pathOf, report } from './walker.js';
import type { DeepPartial, WalkContext } from './walker.js';

/** Rules that span sections, run on whatever parsed, so they are reported alongside the rest. */
export function checkReferences(config: DeepPartial<Config>, cx: WalkContext): void {
  const clusterNames = (config.clusters ?? []).flatMap((c) => (c?.name === undefined ? [] : [c.name]));
  const issuers = [
    ...(config.oidc?.issuers ?? []).flatMap((i) => (i?.issuer === undefined ? [] : [i.issuer])),
    ...(config.saml?.idps ?? []).flatMap((i) => (i?.entityId === undefined ? [] : [i.entityId])),
  ];
  if (config.oidc === undefined && config.saml === undefined)
    report(cx, 'oidc', "required (the issuers agents' tokens come from), unless saml is configured");
  const identities = config.identities ?? [];

  identities.forEach((id, i) => {
    const at = pathOf('identities', i);
    id?.clusters?.forEach((name, j) => {
      if (name !== undefined && !clusterNames.includes(name)) {
        report(
          cx,
          pathOf(pathOf(at, 'clusters'), j),
          `unknown cluster ${JSON.stringify(name)}${didYouMean(name, clusterNames)}`,
        );
      }
    });
    id?.match?.issuer?.forEach((name, j) => {
      if (name !== undefined && !issuers.includes(name)) {
        report(
          cx,
          pathOf(pathOf(pathOf(at, 'match'), 'issuer'), j),
          `unknown issuer ${JSON.stringify(name)} (not in oidc.issuers nor saml.idps)${didYouMean(name, issuers)}`,
        );
      }
    });
  });

  // With static tokens every account an identity may run as on that cluster needs its token file.
  config.clusters?.forEach((c, i) => {
    const name = c?.name;
    if (c?.tokens !== 'static' || name === undefined) return;
    const have = Object.keys(c.staticTokens ?? {});
    identities.forEach((id, j) => {
      if (id === undefined || (id.clusters !== undefined && !id.clusters.includes(name))) return;
      const accounts = [
        ['serviceAccount', id.serviceAccount],
        ['approval.serviceAccount', id.approval?.serviceAccount],
      ] as const;
      for (const [field, account] of accounts) {
        if (account !== undefined && !have.includes(account)) {
          report(
            cx,
            pathOf(pathOf('clusters', i), 'staticTokens'),
            `needs a token for ${JSON.stringify(account)} (identities[${j}].${field})`,
          );
        }
      }
    });
  });

  checkApprovers(config, issuers, cx);

  if (config.audit?.checkpoint?.postToSlack && config.slack === undefined) {
    report(cx, 'audit.checkpoint.postToSlack', 'needs the slack section');
  }
}

/** Approver groups and people name configured issuers; a bare group name only when there is one issuer. */
function checkApprovers(config: DeepPartial<Config>, issuers: readonly string[], cx: WalkContext): void {
  const at = 'approval.approvers';
  config.approval?.approvers?.oidcGroups?.forEach((entry, i) => {
    if (entry?.issuer === undefined || entry.group === undefined) return;
    const where = pathOf(pathOf(at, 'oidcGroups'), i);
    if (entry.issuer === '' && issuers.length > 1) {
      report(
        cx,
        where,
        `a bare group name is ambiguous with ${issuers.length} issuers (oidc.issuers and saml.idps: a token from any of them with group ${JSON.stringify(entry.group)} would make an approver); ` +
          `write { issuer: ${issuers[0]}, group: ${entry.group} } naming the issuer whose group it is`,
      );
    } else if (entry.issuer !== '' && !issuers.includes(entry.issuer)) {
      report(
        cx,
        pathOf(where, 'issuer'),
        `unknown issuer ${JSON.stringify(entry.issuer)} (not in oidc.issuers nor saml.idps)${didYouMean(entry.issuer, issuers)}`,
      );
    }
  });
  const seen = new Map<string, string>();
  config.approval?.approvers?.people?.forEach((person, i) => {
    if (person === undefined) return;
    const where = pathOf(pathOf(at, 'people'), i);
    if (person.oidcSubject !== undefined) {
      if (person.oidcIssuer === undefined && issuers.length > 1)
        report(
          cx,
          pathOf(where, 'oidcIssuer'),
          `required with ${issuers.length} oidc.issuers: a subject is unique only within its issuer`,
        );
      if (person.oidcIssuer !== undefined && !issuers.includes(person.oidcIssuer)) {
        report(
          cx,
          pathOf(where, 'oidcIssuer'),
          `unknown issuer ${JSON.stringify(person.oidcIssuer)} (not in oidc.issuers)${didYouMean(person.oidcIssuer, issuers)}`,
        );
      }
    }
    const keys: [string, string | undefined][] = [
      ['slackUser', person.slackUser],
      [
        'oidcSubject',
        person.oidcSubject === undefined ? undefined : `${person.oidcIssuer ?? issuers[0] ?? ''}#${person.oidcSubject}`,
      ],
      ['email', person.email?.toLowerCase()],
    ];
    for (const [field, value] of keys) {
      if (value === undefined) continue;
      const first = seen.get(`${field}:${value}`);
      if (first !== undefined) report(cx, pathOf(where, field), `also in ${first}: one identity belongs to one person`);
      else seen.set(`${field}:${value}`, where);
    }
  });
}
