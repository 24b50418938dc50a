// Alert delivery against local servers that answer as Slack, Teams, Discord and a generic
// receiver do: payloads, severity filters, secretRef, proxies, Retry-After, backoff, give-up
// events, and webhook addresses and tokens kept out of every log line and event.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { AlertProviderSpec } from '../../src/api/flagger/alert-provider.js';
import type { CanaryAlert } from '../../src/api/flagger/canary.js';
import {
  AlertDispatcher,
  severityAccepts,
  type AlertDispatcherOptions,
} from '../../src/report/alerts/alert-dispatcher.js';
import { alertFields } from '../../src/report/alerts/alert-fields.js';
import { discordSlackUrl } from '../../src/report/alerts/discord.js';
import { adaptiveCard, isWorkflowsWebhook } from '../../src/report/alerts/msteams.js';
import type { Alert } from '../../src/report/alerts/sender.js';
import { ReportMetrics, type ReportEvent } from '../../src/report/metrics.js';
import {
  captureLogger,
  FakeClock,
  startServer,
  waitFor,
  type Answer,
  type Received,
  type TestServer,
} from './support.js';

const SLACK_PATH = '/services/T0001/B0002/XoXSecretHookPath0123';
const DISCORD_PATH = '/api/webhooks/1234567890/DiscordSecretToken_abcdefgh';
const SECRET_TOKEN = 'xoxb-secret-slack-token-999';

/** A receiver that answers as the named service documents, with a script for the next answers. */
async function receiver(kind: 'slack' | 'teams' | 'discord' | 'generic') {
  const script: (Answer | 'hang')[] = [];
  const server = await startServer((req: Received) => {
    const next = script.shift();
    if (next === 'hang') return undefined;
    if (next) return next;
    if (kind === 'slack') {
      if (req.url !== SLACK_PATH) return { status: 404, body: 'no_service' };
      const b = JSON.parse(req.body) as { text?: string; blocks?: unknown };
      return b.text || b.blocks ? { status: 200, body: 'ok' } : { status: 400, body: 'no_text' };
    }
    if (kind === 'discord') {
      if (req.url !== `${DISCORD_PATH}/slack`)
        return { status: 404, body: { message: 'Unknown Webhook', code: 10015 } };
      return { status: 200, body: 'ok' };
    }
    if (kind === 'teams') return { status: 200, body: '1' };
    return { status: 202, body: '' };
  });
  return Object.assign(server, { script });
}

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

const ALERT: Alert = {
  namespace: 'test',
  name: 'podinfo',
  severity: 'error',
  phase: 'Failed',
  message: 'Failed checks threshold reached 2: request-success-rate 91.3% < min 99% at weight 20%',
  fields: [
    { name: 'Target', value: 'Deployment/podinfo.test' },
    { name: 'Failed checks threshold', value: '2' },
  ],
};

function route(name: string, severity?: CanaryAlert['severity'], namespace?: string): CanaryAlert {
  return {
    name,
    ...(severity !== undefined ? { severity } : {}),
    providerRef: { name, ...(namespace ? { namespace } : {}) },
  };
}

function rig(
  providers: Record<string, AlertProviderSpec>,
  over: Partial<AlertDispatcherOptions> = {},
) {
  const clock = new FakeClock();
  const { logger, lines } = captureLogger();
  const events: ReportEvent[] = [];
  const registry = new Registry();
  const d = new AlertDispatcher({
    lookupProvider: (ns, name) => providers[`${ns}/${name}`],
    clock,
    logger,
    metrics: new ReportMetrics(registry),
    onEvent: (e) => events.push(e),
    retry: { retries: 2, baseDelayMs: 1000, maxDelayMs: 4000 },
    ...over,
  });
  return { d, clock, lines, events, registry };
}

function assertNoSecrets(lines: string[], events: ReportEvent[]): void {
  for (const text of [...lines, ...events.map((e) => JSON.stringify(e))])
    for (const s of ['XoXSecretHookPath0123', 'DiscordSecretToken_abcdefgh', SECRET_TOKEN])
      assert.ok(!text.includes(s), `a secret leaked: ${text}`);
}

describe('severity filters', () => {
  it("as Flagger's: info gets all, warn gets warn and error, error gets error", () => {
    const table: [string | undefined, string[]][] = [
      [undefined, ['info', 'warn', 'error']],
      ['', ['info', 'warn', 'error']],
      ['info', ['info', 'warn', 'error']],
      ['warn', ['warn', 'error']],
      ['error', ['error']],
    ];
    for (const [filter, takes] of table)
      assert.deepEqual(
        (['info', 'warn', 'error'] as const).filter((s) => severityAccepts(filter, s)),
        takes,
        String(filter),
      );
  });
});

describe('alert fields', () => {
  it("as Flagger's alertMetadata: target, threshold, deadline, traffic routing", () => {
    const target = { kind: 'Deployment', name: 'podinfo' };
    const analysis = { interval: '10s', threshold: 2 };
    assert.deepEqual(
      alertFields(
        'test',
        { targetRef: target, analysis: { ...analysis, stepWeight: 10, maxWeight: 50 } },
        { revision: 'main@abc123' },
      ),
      [
        { name: 'Target', value: 'Deployment/podinfo.test' },
        { name: 'Failed checks threshold', value: '2' },
        { name: 'Progress deadline', value: '600s' },
        { name: 'Traffic routing', value: 'Weight step: 10 max: 50' },
        { name: 'Revision', value: 'main@abc123' },
      ],
    );
    const routing = (a: object) =>
      alertFields('test', {
        targetRef: target,
        progressDeadlineSeconds: 60,
        analysis: { ...analysis, ...a },
      }).find((f) => f.name === 'Traffic routing')?.value;
    assert.equal(routing({ stepWeights: [1, 10, 50] }), 'Weight steps: 1,10,50 max: 50');
    assert.equal(
      routing({ iterations: 5, match: [{ headers: {} }] }),
      'A/B Testing · iterations: 5',
    );
    assert.equal(routing({ iterations: 5 }), 'Blue/Green · iterations: 5');
    assert.deepEqual(alertFields('test', { targetRef: target }), [
      { name: 'Target', value: 'Deployment/podinfo.test' },
    ]);
  });
});

describe('alert payloads as each service takes them', () => {
  it('Slack: text, blocks with the fields, channel, username; filtered by severity', async () => {
    const slack = await receiver('slack');
    servers.push(slack);
    const spec: AlertProviderSpec = {
      type: 'slack',
      address: slack.url + SLACK_PATH,
      channel: '#deploys',
      username: 'sluice-bot',
    };
    const r = rig({ 'test/all': spec, 'test/errors': spec, 'ops/warnings': spec });
    const routes = [route('all'), route('errors', 'error'), route('warnings', 'warn', 'ops')];
    r.d.dispatch(routes, { ...ALERT, severity: 'info', message: 'New revision detected <b>&' });
    r.d.dispatch(routes, { ...ALERT, severity: 'warn', message: 'Halt advancement' });
    r.d.dispatch(routes, ALERT);
    await r.d.idle();
    assert.equal(slack.received.length, 6); // info:1, warn:2, error:3
    assert.equal(r.d.stats().filtered, 3);
    const first = JSON.parse(slack.received[0]!.body) as Record<string, unknown>;
    assert.deepEqual(first, {
      channel: '#deploys',
      username: 'sluice-bot',
      icon_emoji: ':rocket:',
      text: 'podinfo.test: New revision detected &lt;b&gt;&amp;',
      blocks: [
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: ':information_source: *podinfo.test*\nNew revision detected &lt;b&gt;&amp;',
          },
        },
        {
          type: 'section',
          fields: [
            { type: 'mrkdwn', text: '*Target*\nDeployment/podinfo.test' },
            { type: 'mrkdwn', text: '*Failed checks threshold*\n2' },
          ],
        },
      ],
    });
    assert.equal(slack.received[0]!.headers['content-type'], 'application/json');
    assert.equal(r.events.length, 0);
    assertNoSecrets(r.lines, r.events);
  });

  it("Teams: Flagger's MessageCard for connectors; an Adaptive Card for Workflows URLs", async () => {
    const teams = await receiver('teams');
    servers.push(teams);
    const r = rig({ 'test/teams': { type: 'msteams', address: `${teams.url}/webhookb2/abc` } });
    r.d.dispatch([route('teams')], ALERT);
    await r.d.idle();
    assert.deepEqual(JSON.parse(teams.received[0]!.body), {
      '@type': 'MessageCard',
      '@context': 'http://schema.org/extensions',
      themeColor: 'FF0000',
      summary: 'podinfo.test',
      sections: [
        {
          activityTitle: ALERT.message,
          activitySubtitle: 'podinfo.test',
          facts: [
            { name: 'Target', value: 'Deployment/podinfo.test' },
            { name: 'Failed checks threshold', value: '2' },
          ],
        },
      ],
    });
    assert.equal(
      isWorkflowsWebhook(
        'https://prod-12.westus.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke',
      ),
      true,
    );
    assert.equal(isWorkflowsWebhook('https://acme.webhook.office.com/webhookb2/x'), false);
    const card = adaptiveCard(ALERT);
    assert.equal(card.type, 'message');
    assert.equal(card.attachments[0]!.contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(card.attachments[0]!.content.type, 'AdaptiveCard');
    assert.deepEqual(card.attachments[0]!.content.body[0], {
      type: 'TextBlock',
      text: ALERT.message,
      weight: 'Bolder',
      wrap: true,
      color: 'Attention',
    });
  });

  it('Teams: a connector throttling inside a 200 is retried', async () => {
    const teams = await receiver('teams');
    servers.push(teams);
    teams.script.push({
      status: 200,
      body: 'Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId x',
    });
    const r = rig({ 'test/teams': { type: 'msteams', address: `${teams.url}/webhookb2/abc` } });
    r.d.dispatch([route('teams')], ALERT);
    await waitFor(() => r.clock.pending === 1, 'the retry timer');
    await r.clock.advance(1000);
    await r.d.idle();
    assert.equal(teams.received.length, 2);
    assert.equal(r.d.stats().sent, 1);
  });

  it("Discord: Slack-compatible /slack endpoint with Flagger's attachment", async () => {
    const discord = await receiver('discord');
    servers.push(discord);
    const r = rig({
      'test/discord': { type: 'discord', address: discord.url + DISCORD_PATH, username: 'sluice' },
    });
    r.d.dispatch([route('discord')], { ...ALERT, severity: 'warn' });
    await r.d.idle();
    assert.equal(discord.received[0]!.url, `${DISCORD_PATH}/slack`);
    assert.deepEqual(JSON.parse(discord.received[0]!.body), {
      username: 'sluice',
      icon_emoji: ':rocket:',
      attachments: [
        {
          color: 'warning',
          author_name: 'podinfo.test',
          text: ALERT.message,
          mrkdwn_in: ['text'],
          fields: [
            { title: 'Target', value: 'Deployment/podinfo.test', short: false },
            { title: 'Failed checks threshold', value: '2', short: false },
          ],
        },
      ],
    });
    assert.equal(
      discordSlackUrl('https://discord.com/api/webhooks/1/t/slack'),
      'https://discord.com/api/webhooks/1/t/slack',
    );
    assert.equal(
      discordSlackUrl('https://discord.com/api/webhooks/1/t/'),
      'https://discord.com/api/webhooks/1/t/slack',
    );
  });

  it("generic: Flagger's event payload with the injected clock's timestamp", async () => {
    const generic = await receiver('generic');
    servers.push(generic);
    const r = rig({ 'test/hook': { type: 'generic', address: `${generic.url}/events` } });
    r.d.dispatch([route('hook')], ALERT);
    await r.d.idle();
    assert.deepEqual(JSON.parse(generic.received[0]!.body), {
      name: 'podinfo',
      namespace: 'test',
      phase: 'Failed',
      metadata: {
        eventMessage: ALERT.message,
        eventType: 'Warning',
        timestamp: String(r.clock.now()),
        severity: 'error',
      },
      fields: ALERT.fields,
    });
  });
});

describe('alert delivery', () => {
  it('the address and token come from the secretRef through the resolver passed in', async () => {
    const slack = await receiver('slack');
    servers.push(slack);
    const asked: string[] = [];
    const r = rig(
      {
        'test/slack': { type: 'slack', secretRef: { name: 'slack-url' } },
        'test/nosecret': { type: 'slack', secretRef: { name: 'missing' } },
        'test/noaddress': { type: 'generic' },
        'test/gchat': { type: 'gchat' as never, address: slack.url },
      },
      {
        resolveSecret: async (ns, name) => {
          asked.push(`${ns}/${name}`);
          return name === 'slack-url'
            ? { address: slack.url + SLACK_PATH, token: SECRET_TOKEN }
            : undefined;
        },
      },
    );
    r.d.dispatch(
      [route('slack'), route('nosecret'), route('noaddress'), route('gone'), route('gchat')],
      ALERT,
    );
    await r.d.idle();
    assert.deepEqual(asked.sort(), ['test/missing', 'test/slack-url']);
    assert.equal(slack.received.length, 1);
    assert.equal(slack.received[0]!.headers.authorization, `Bearer ${SECRET_TOKEN}`);
    assert.deepEqual(r.events.map((e) => [e.reason, e.code]).sort(), [
      ['AlertFailed', 'SLUICE_REPORT_ALERT_PROVIDER'],
      ['AlertFailed', 'SLUICE_REPORT_ALERT_PROVIDER'],
      ['AlertFailed', 'SLUICE_REPORT_ALERT_PROVIDER'],
      ['AlertFailed', 'SLUICE_REPORT_CONFIG'],
    ]);
    assert.ok(r.events.some((e) => /AlertProvider test\/gone does not exist/.test(e.message)));
    assert.ok(r.events.every((e) => e.object?.name === 'podinfo'));
    assertNoSecrets(r.lines, r.events);
  });

  it("Slack's API answering ok=false is a failure, not a delivery", async () => {
    const slack = await receiver('slack');
    servers.push(slack);
    slack.script.push({ status: 200, body: { ok: false, error: 'invalid_auth' } });
    const r = rig({ 'test/slack': { type: 'slack', address: slack.url + SLACK_PATH } });
    r.d.dispatch([route('slack')], ALERT);
    await r.d.idle();
    assert.equal(r.events[0]?.code, 'SLUICE_REPORT_UNAUTHORIZED');
  });

  it("429 waits for Retry-After (header, or Discord's retry_after), 5xx backs off, then one event", async () => {
    const discord = await receiver('discord');
    servers.push(discord);
    discord.script.push(
      {
        status: 429,
        body: { message: 'You are being rate limited.', retry_after: 2.5, global: false },
      },
      { status: 503, body: 'unavailable' },
    );
    const r = rig({ 'test/discord': { type: 'discord', address: discord.url + DISCORD_PATH } });
    r.d.dispatch([route('discord')], ALERT);
    await waitFor(() => r.clock.pending === 1, 'the first retry');
    assert.deepEqual(r.clock.delays(), [2500]);
    await r.clock.advance(2500);
    await waitFor(() => discord.received.length === 2 && r.clock.pending === 1, 'the second retry');
    assert.deepEqual(r.clock.delays(), [2000]);
    await r.clock.advance(2000);
    await r.d.idle();
    assert.equal(r.d.stats().sent, 1);

    const slack = await receiver('slack');
    servers.push(slack);
    for (let i = 0; i < 3; i++)
      slack.script.push({ status: 500, body: `rollup_error ${SLACK_PATH}` });
    const r2 = rig({ 'test/slack': { type: 'slack', address: slack.url + SLACK_PATH } });
    r2.d.dispatch([route('slack')], ALERT);
    await waitFor(() => r2.clock.pending === 1);
    await r2.clock.advance(1000);
    await waitFor(() => slack.received.length === 2 && r2.clock.pending === 1);
    await r2.clock.advance(2000);
    await r2.d.idle();
    assert.equal(slack.received.length, 3);
    assert.equal(r2.events.length, 1);
    assert.equal(r2.events[0]!.code, 'SLUICE_REPORT_GAVE_UP');
    assert.match(r2.events[0]!.message, /alert to test\/slack not delivered after 3 attempts/);
    assert.match(
      await r2.registry.metrics(),
      /sluice_alerts_total\{provider="slack",result="retried"\} 2/,
    );
    assertNoSecrets(r2.lines, r2.events);
  });

  it('a receiver that never answers blocks no caller; the bounded queue drops the oldest', async () => {
    const generic = await receiver('generic');
    servers.push(generic);
    for (let i = 0; i < 3; i++) generic.script.push('hang');
    const r = rig(
      { 'test/hook': { type: 'generic', address: `${generic.url}/e` } },
      { concurrency: 1, maxQueued: 2 },
    );
    for (let i = 1; i <= 4; i++)
      assert.equal(r.d.dispatch([route('hook')], { ...ALERT, message: `alert ${i}` }), undefined);
    await waitFor(() => generic.received.length === 1);
    assert.equal(r.d.stats().queued, 2);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]!.code, 'SLUICE_REPORT_QUEUE_FULL');
    assert.match(r.events[0]!.message, /alert 2/);
    await r.d.close();
  });

  it('a provider with a proxy goes through it', async () => {
    const generic = await receiver('generic');
    servers.push(generic);
    const connects: string[] = [];
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, client: Socket, head: Buffer) => {
      connects.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => s.destroy());
        s.on('close', () => sockets.delete(s));
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const r = rig({
      'test/hook': { type: 'generic', address: `${generic.url}/via-proxy`, proxy: proxyUrl },
    });
    try {
      r.d.dispatch([route('hook')], ALERT);
      await r.d.idle();
      assert.equal(r.d.stats().sent, 1);
      assert.deepEqual(connects, [new URL(generic.url).host]);
      assert.equal(generic.received.at(-1)!.url, '/via-proxy');
    } finally {
      await r.d.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
