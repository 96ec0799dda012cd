/**
 * Ruling 11: which client headers reach the provider. The spec's own headers and ordinary
 * end-to-end ones do; hop-by-hop ones, the gateway's replaced X-Forwarded-*, and every spelling of
 * a header that says who the client is or where a request goes do not.
 */
import t from 'tap';
import { connectionTokens, forwardable } from '../../src/edge/forward-headers.js';

t.test('forwarded as sent', async (t) => {
  for (const name of ['ssp-traceid', 'ssp-from', 'ssp-to', 'ssp-interactionid', 'authorization', 'if-match', 'content-type', 'accept', 'prefer',
    'x-request-id', 'x-correlation-id', 'traceparent', 'tracestate', 'user-agent', 'if-none-exist', 'if-none-match', 'if-modified-since',
    'cache-control', 'range', 'if-range', 'x-amzn-trace-id', 'x-retry-count', 'x-custom', 'accept-language', 'pragma',
    'x-custom-client', 'x-client-version', 'x-session-id', 'x-api-path', 'x-request-method']) {
    t.ok(forwardable(name, undefined), name);
  }
});

t.test('held back', async (t) => {
  for (const name of ['connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'expect', 'host', 'content-length', 'transfer-encoding', 'accept-encoding',
    'x-forwarded-for', 'x-forwarded', 'x-forwardedfor', 'x-forwardedhost', 'forwarded', 'x_forwarded_server',
    'x-original-url', 'x_original_url', 'x-originalurl', 'x-rewrite-url', 'x-original-uri', 'destination', 'content-range', 'x-http-method-override', 'x-httpmethodoverride',
    'x-real-ip', 'x-realip', 'x-clientip', 'true-client-ip', 'x-originating-ip', 'x.real.ip',
    'client-cert', 'client-cert-chain', 'x-ssl-client-cert', 'x-sslclientcert', 'x-arr-clientcert', 'ssl_client_s_dn',
    'x-remote-user', 'x-authenticated-userid', 'x-userid', 'x-consumer-username', 'x-credential-identifier', 'nhsd-end-user-organisation-ods',
    'x-original-host', 'x-envoy-original-path', 'x-auth-request-user', 'x-ms-client-principal-name', 'x-amzn-mtls-clientcert', 'x-ssl-cert',
    'cookie', 'cookie2', 'proxy',
    // identity-aware proxies' word on the user (README review of stop 33)
    'x-authenticated-user', 'x-auth-user', 'x-proxy-user', 'x-webauth-user', 'authenticated-user', 'remote-email', 'remote-groups',
    'x-amzn-oidc-identity', 'x-amzn-oidc-data', 'x-amzn-oidc-accesstoken', 'x-goog-authenticated-user-email', 'x-goog-iap-jwt-assertion',
    'cf-access-authenticated-user-email', 'cf-access-jwt-assertion', 'x-shib-user', 'shib-identity-provider', 'x-iinsproxy-user', 'x-client-s-dn',
    'x-authenticateduser', 'x_webauth_user']) {
    t.notOk(forwardable(name, undefined), name);
  }
});

t.test('a header named in Connection is hop-by-hop, unless the gateway checked it', async (t) => {
  const named = connectionTokens('keep-alive, X-Hop, If-Match');
  t.notOk(forwardable('x-hop', named));
  t.ok(forwardable('if-match', named));
});
