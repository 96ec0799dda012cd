/**
 * RFC 9112 §3.2.2: a request target in absolute form is taken as its origin form, exactly as sent;
 * the head is still measured as sent (limits.maxHeaderBytes). Review of stop 33.
 */
import t from 'tap';
import { originForm } from '../../src/edge/tls-listener.js';
import { headBytes, keepSentTarget, sentTarget } from '../../src/edge/request-head.js';

t.test('absolute form to origin form, path and query untouched', async (t) => {
  t.equal(originForm('https://gw.example/STU3/1/Appointment/a1'), '/STU3/1/Appointment/a1');
  t.equal(originForm('HTTP://GW.example:8443/STU3/1/Appointment?q=\'x\'%zz'), '/STU3/1/Appointment?q=\'x\'%zz');
  t.equal(originForm('https://gw.example?x=1'), '/?x=1', 'no path: the root');
  t.equal(originForm('https://[::1]:8443/a'), '/a', 'an IPv6 literal');
  for (const bad of ['https://user@gw.example/a', 'https://u:p@gw.example/a', 'https://%40@gw/a', 'https://gw:abc/a', 'https://gw:1:2/a', 'https://[::1/a']) t.equal(originForm(bad), bad, `no http(s) authority (left as sent: 404): ${bad}`);
  t.equal(originForm('https://gw.example'), '/');
  t.equal(originForm('/STU3/1/Appointment/a1'), '/STU3/1/Appointment/a1', 'origin form as it is');
  t.equal(originForm('https:///STU3/1/Appointment'), 'https:///STU3/1/Appointment', 'an empty authority is no http(s) URI: left as sent (404)');
  for (const hostless of ['https://:443/STU3/1/Appointment', 'https://u@/STU3/1/Appointment', 'https://u:p@:8443/STU3/1/Appointment']) t.equal(originForm(hostless), hostless, `no host: ${hostless}`);
  t.equal(originForm('ftp://gw.example/x'), 'ftp://gw.example/x');
  t.equal(originForm('*'), '*');
});

t.test('the head is measured with the target as sent', async (t) => {
  const req = { url: '/STU3/1/Appointment' };
  const sent = `https://${'a'.repeat(5000)}/STU3/1/Appointment`;
  keepSentTarget(req, sent);
  t.equal(sentTarget(req), sent);
  t.ok(headBytes('GET', sentTarget(req), []) > 5000, 'the authority counts');
  t.equal(sentTarget({ url: '/x' }), '/x', 'origin form: req.url');
});
