#!/usr/bin/env node
// A reference worker for one agency, over gRPC with @grpc/grpc-js (docs/integration.md).
//
// It reads its agency's inbox (AgencyGateway.Inbox) and, for each item:
// - NEW_TASK: accepts the task, hands the case on to --hand-on if given, and completes it;
// - INFO_ANSWER: completes the task the answer was for;
// - anything else (accepted, completed, sent back, resolved, withdrawn...): notes it;
// then acknowledges it (Ack). It takes each item in at most once, by its event id: the ids it
// has handled are kept in a JSON file (--state), recorded only after the work is stored and
// before the ack, so a redelivered item (lost ack, crash, reconnect) is acknowledged without
// being acted on again. Every write's idempotency key is derived from the item's event id, so
// even work redone after a crash before that record writes nothing twice.
//
//   node worker.js --adapter http://127.0.0.1:PORT --token T --agency MOIC
//   node worker.js --adapter https://127.0.0.1:PORT --ca ca.pem --token T --agency MOIC \
//                  --state moic.json --hand-on MOF
//
// The contract is loaded from proto/ at start (@grpc/proto-loader): nothing is generated. It
// prints one JSON line per item and runs until it is stopped.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.resolve(__dirname, '..', '..', 'proto');

// Writes answered UNAVAILABLE or ABORTED are retried by grpc-js itself (the channel's retry
// policy) with the same request, hence the same idempotency key: a retry of a write that
// landed returns its first receipt.
const SERVICE_CONFIG = JSON.stringify({
  methodConfig: [{
    name: [{ service: 'onedoor.v1.AgencyGateway' }],
    retryPolicy: {
      maxAttempts: 5, initialBackoff: '0.2s', maxBackoff: '5s', backoffMultiplier: 2,
      retryableStatusCodes: ['UNAVAILABLE', 'ABORTED'],
    },
  }],
});

// Refusals that another try cannot change (the case moved on: resolved, withdrawn, the task
// closed): the item is recorded as refused and acknowledged, not retried forever.
const FINAL_REFUSALS = new Set([grpc.status.FAILED_PRECONDITION, grpc.status.PERMISSION_DENIED,
  grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.ALREADY_EXISTS]);
// Kinds that end a task this agency held: the local task is closed, nothing is written.
const CLOSING_KINDS = new Set(['TASK_TAKEN_BACK', 'CASE_RESOLVED', 'CASE_WITHDRAWN']);

function options() {
  const { values } = parseArgs({
    options: {
      adapter: { type: 'string' }, // http://HOST:PORT, or https:// with TLS
      token: { type: 'string' }, // the agency's bearer token
      agency: { type: 'string' }, // the agency's code, e.g. MOIC
      ca: { type: 'string' }, // CA certificate (PEM) of the adapter's TLS certificate
      'tls-server-name': { type: 'string' }, // name to check the adapter's certificate for
      state: { type: 'string' }, // JSON file of handled event ids (kept across restarts)
      'hand-on': { type: 'string' }, // after accepting a new task, hand the case on to it
      outcome: { type: 'string', default: 'approved' },
      // For tests: exit abruptly after recording the first new item, before its ack.
      'crash-before-ack': { type: 'boolean', default: false },
    },
  });
  for (const name of ['adapter', 'token', 'agency']) {
    if (!values[name]) {
      process.stderr.write(`worker: --${name} is required\n`);
      process.exit(2);
    }
  }
  return values;
}

function gatewayClient(args) {
  const definition = protoLoader.loadSync('onedoor/v1/gateway.proto', {
    includeDirs: [PROTO_DIR], keepCase: false, longs: String, enums: String, defaults: true,
    oneofs: true,
  });
  const { AgencyGateway } = grpc.loadPackageDefinition(definition).onedoor.v1;
  const target = args.adapter.replace(/^[a-z]+:\/\//, '').replace(/\/$/, '');
  const channelOptions = { 'grpc.service_config': SERVICE_CONFIG, 'grpc.enable_retries': 1 };
  let credentials = grpc.credentials.createInsecure();
  if (args.adapter.startsWith('https://')) {
    credentials = grpc.credentials.createSsl(args.ca ? fs.readFileSync(args.ca) : null);
    if (args['tls-server-name']) {
      channelOptions['grpc.ssl_target_name_override'] = args['tls-server-name'];
    }
  }
  return new AgencyGateway(target, credentials, channelOptions);
}

// The event ids this worker has taken in, with what it did (the ministry's database). Saved
// by writing a new file and renaming it over the old one, so a crash leaves one or the other.
class Store {
  constructor(file) {
    this.file = file;
    this.handled = file && fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  }

  seen(eventId) {
    return Object.hasOwn(this.handled, eventId);
  }

  record(eventId, line) {
    this.handled[eventId] = line;
    if (this.file) {
      fs.writeFileSync(`${this.file}.new`, JSON.stringify(this.handled));
      fs.renameSync(`${this.file}.new`, this.file);
    }
  }
}

class Worker {
  constructor(args) {
    this.args = args;
    this.client = gatewayClient(args);
    this.store = new Store(args.state);
  }

  metadata(traceparent) {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.args.token}`);
    // The calls about an item continue the case's trace.
    if (traceparent) metadata.set('traceparent', traceparent);
    return metadata;
  }

  call(method, request, traceparent) {
    return new Promise((resolve, reject) => {
      this.client[method](request, this.metadata(traceparent),
        { deadline: Date.now() + 30_000 },
        (error, answer) => (error ? reject(error) : resolve(answer)));
    });
  }

  // Does the agency's part for `item`; the writes it made, by event kind.
  async act(item, kind) {
    const { caseId, eventId } = item.event;
    const actor = 'reference-worker-node';
    const writes = [];
    if (kind === 'NEW_TASK') {
      await this.call('Accept', { caseId, idempotencyKey: `accept:${eventId}`, actor },
        item.traceparent);
      writes.push('accepted');
      if (this.args['hand-on']) {
        await this.call('HandOff', {
          caseId, toAgency: this.args['hand-on'], actor,
          instructions: `passed on by ${this.args.agency}`, idempotencyKey: `hand-on:${eventId}`,
        }, item.traceparent);
        writes.push('handed_off');
      }
    }
    if (kind === 'NEW_TASK' || kind === 'INFO_ANSWER') {
      await this.call('Complete', {
        caseId, outcome: this.args.outcome, idempotencyKey: `complete:${eventId}`, actor,
      }, item.traceparent);
      writes.push('completed');
    }
    return writes;
  }

  async handle(item) {
    const { eventId, caseId } = item.event;
    const kind = item.kind.replace(/^INBOX_ITEM_KIND_/, '');
    let line = {
      event: eventId, kind, case: caseId, attempt: item.deliveryAttempt, trace: item.traceparent,
    };
    if (this.store.seen(eventId)) {
      line = { duplicate: eventId, attempt: item.deliveryAttempt };
    } else {
      try {
        line.writes = await this.act(item, kind);
        // Snake case: the same line shape as the Python worker's.
        if (CLOSING_KINDS.has(kind)) line.closed_task = caseId;
      } catch (error) {
        if (!FINAL_REFUSALS.has(error.code)) throw error; // not acknowledged: it comes again
        line.refused = { code: grpc.status[error.code], message: error.details };
      }
      // Recorded once the work is stored, acknowledged once recorded.
      this.store.record(eventId, line);
      if (this.args['crash-before-ack']) {
        fs.writeSync(1, `${JSON.stringify(line)}\n`);
        process.exit(3);
      }
    }
    await this.call('Ack', { eventIds: [eventId] }, item.traceparent);
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }

  // One inbox stream, items handled one at a time; resolves when the stream ends.
  stream() {
    return new Promise((resolve, reject) => {
      // waitForReady: while the adapter is down, grpc-js's own connection back-off paces the
      // reconnection.
      const call = this.client.Inbox({}, this.metadata(), { waitForReady: true });
      let queue = Promise.resolve();
      call.on('data', (item) => {
        call.pause();
        queue = queue.then(() => this.handle(item)).then(() => call.resume(), (error) => {
          call.cancel();
          reject(error);
        });
      });
      call.on('error', (error) => {
        if (error.code !== grpc.status.CANCELLED) reject(error);
      });
      call.on('end', () => queue.then(resolve, reject));
    });
  }

  // Reads the inbox forever, reconnecting when the stream ends or fails.
  async run() {
    let failures = 0;
    for (;;) {
      try {
        await this.stream();
        failures = 0;
      } catch (error) {
        if (error.code === grpc.status.UNAUTHENTICATED) {
          process.stderr.write(`worker: ${error.details}\n`);
          process.exit(1);
        }
        process.stderr.write(`${JSON.stringify({ stream: grpc.status[error.code], message: error.details || String(error) })}\n`);
        failures += 1;
      }
      // A stream the adapter ended or refused (the bus unreachable): try again, waiting
      // longer after each failure in a row, up to 30 s.
      const delay = failures ? Math.min(30_000, 500 * 2 ** failures) : 0;
      await new Promise((resolve) => { setTimeout(resolve, delay); });
    }
  }
}

new Worker(options()).run();
