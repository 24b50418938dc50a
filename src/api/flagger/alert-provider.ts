/**
 * AlertProvider (sluice.dev/v1beta1, and flagger.app/v1beta1 as-is): where a Canary's
 * `analysis.alerts` are delivered. The webhook address is `address`, or the `address` key of
 * the Secret named by `secretRef` (Kubernetes).
 * Field reference: Flagger's pkg/apis/flagger/v1beta1/alert.go and
 * https://docs.flagger.app/usage/alerting
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, Struct } from '../schema.js';
import {
  SLUICE_CANONICAL,
  SLUICE_VERSIONS,
  SecretReference,
  literals,
  toCanonical,
} from './common.js';

/** Slack, Microsoft Teams, Discord, and sluice's `generic` JSON webhook. */
export const AlertProviderType = literals(['slack', 'msteams', 'discord', 'generic'], {
  rocket: 'Rocket.Chat is not implemented; its Slack-compatible webhook works with type slack',
  gchat: 'Google Chat is not implemented; use generic',
});

// Flagger requires one of address or secretRef; that is a check across fields, left to the
// semantic stage so the diagnostic can say so in words.
export const AlertProviderSpec = Struct({
  type: AlertProviderType,
  channel: Opt(Type.String({ description: 'Slack channel' })),
  username: Opt(Type.String({ description: 'name the message is posted as' })),
  address: Opt(Type.String({ pattern: '^https?://.+', description: 'http(s) webhook URL' })),
  proxy: Opt(Type.String({ pattern: '^https?://.+', description: 'http(s) proxy URL' })),
  secretRef: Opt(SecretReference),
});
export type AlertProviderSpec = Static<typeof AlertProviderSpec>;

export const AlertProvider = resourceSchema('AlertProvider', SLUICE_VERSIONS, {
  spec: AlertProviderSpec,
});
export type AlertProvider = Static<typeof AlertProvider>;

export const alertProviderKind: KindDefinition = {
  kind: 'AlertProvider',
  apiVersions: SLUICE_VERSIONS,
  canonicalApiVersion: SLUICE_CANONICAL,
  namespaced: true,
  schema: AlertProvider,
  normalize: (object) => toCanonical(object),
};
