import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import { decodedBody } from '../http/content-coding.js';
import { STANDARDS } from '../standards/index.js';

/**
 * The provider as `vault restore` needs it: read the current appointment, write a kept version
 * back. Injectable (tests use a recording server; the lead may swap in the provider port).
 */
export interface ProviderReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RestoreProvider {
  read(appointmentId: string): Promise<ProviderReply>;
  write(appointmentId: string, body: Buffer, o: { contentType: string; ifMatch: string }): Promise<ProviderReply>;
}

export interface RestoreProviderOptions {
  /** Ssp-From: the ASID the operator's requests come from (a provider may check it). */
  fromAsid?: string;
  /** A bearer token for providers that require one (read from a file: never on the command line). */
  token?: string;
}

/**
 * Over node:http(s) with config.upstream (url, ca, cert, key, timeoutMs). Sends what a Spine
 * provider expects of a consumer: Ssp-TraceID (fresh), Ssp-To (the first configured provider
 * ASID), Ssp-InteractionID (the standard's read / update interaction), Ssp-From and
 * Authorization when given. No redirect is followed; one attempt, never retried.
 */
export function createRestoreProvider(config: Readonly<Config>, o: RestoreProviderOptions = {}): RestoreProvider {
  const base = new URL(config.upstream.url + '/');
  const isHttps = base.protocol === 'https:';
  const tls = isHttps
    ? {
        ...(config.upstream.ca ? { ca: readFileSync(config.upstream.ca) } : {}),
        ...(config.upstream.cert ? { cert: readFileSync(config.upstream.cert) } : {}),
        ...(config.upstream.key ? { key: readFileSync(config.upstream.key) } : {}),
      }
    : {};
  const std = STANDARDS[config.standard];
  const interaction = (name: string): string => std.interactions.find((i) => i.name === name)?.id ?? '';
  const headers = (name: string): Record<string, string> => ({
    Accept: 'application/fhir+json',
    'Ssp-TraceID': randomUUID(),
    'Ssp-To': config.spine.providerAsids[0] ?? '',
    'Ssp-InteractionID': interaction(name),
    ...(o.fromAsid ? { 'Ssp-From': o.fromAsid } : {}),
    ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}),
  });
  // One deadline for the whole exchange, answer included (ruling 24), not an idle timeout.
  const deadlineMs = config.upstream.timeoutMs + config.upstream.bodyTimeoutMs;
  const exchange = (method: string, id: string, h: Record<string, string>, body?: Buffer): Promise<ProviderReply> =>
    new Promise((resolve, reject) => {
      const url = new URL(`Appointment/${encodeURIComponent(id)}`, base);
      const req = (isHttps ? https : http).request(url, { method, headers: body ? { ...h, 'Content-Length': String(body.length) } : h, ...tls });
      const timer = setTimeout(() => req.destroy(new Error(`provider did not answer within ${deadlineMs} ms`)), deadlineMs);
      // Whether the request went out whole: a failure before that (refused, unresolvable) changed nothing.
      let sent = false;
      req.on('finish', () => (sent = true));
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => reject(Object.assign(e, { mayHaveApplied: sent })));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          // An answer content-coded unasked is read decoded (as the gateway reads it).
          const { 'content-encoding': coding, ...rest } = res.headers;
          try {
            resolve({ status: res.statusCode ?? 0, headers: coding ? rest : res.headers, body: decodedBody(Buffer.concat(chunks), coding, config.upstream.maxAnswerBytes) });
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      });
      req.end(body);
    });
  return {
    read: (id) => exchange('GET', id, headers('read')),
    // The standard's update: under GP Connect the amend interaction (`…:update:appointment-1`),
    // not cancel — a restore usually un-cancels; under NHS Booking update is the one PUT interaction.
    write: (id, body, w) => exchange('PUT', id, { ...headers(std.interactions.some((i) => i.name === 'amend') ? 'amend' : 'cancel'), Accept: w.contentType, 'Content-Type': w.contentType, 'If-Match': w.ifMatch }, body),
  };
}
