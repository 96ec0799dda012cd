/** What a PostgreSQL refusal is reported as: its SQLSTATE and, for the connection refusals, what it means — never the server's text. */
import t from 'tap';
import { describePgError } from '../../src/store/postgres.js';

t.test('connection refusals are named, by SQLSTATE only', async (t) => {
  const e = (code: string, message: string) => Object.assign(new Error(message), { code });
  t.same(describePgError(e('28P01', 'password authentication failed for user "gw"')), { kind: 'unavailable', text: 'SQLSTATE 28P01: password authentication failed' });
  t.match(describePgError(e('28000', 'no pg_hba.conf entry for host "10.0.0.1", user "gw"')).text, /^SQLSTATE 28000: the server refused this client/);
  t.equal(describePgError(e('3D000', 'database "patients_db" does not exist')).text, 'SQLSTATE 3D000: the database does not exist');
  t.equal(describePgError(e('23505', 'duplicate key value violates unique constraint: Key (id)=(9434765919)')).text, 'SQLSTATE 23505', 'other server errors: the state alone (their text may hold data)');
  t.equal(describePgError(e('57014', 'canceling statement due to statement timeout')).kind, 'timeout');
  t.equal(describePgError(e('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')).text, 'cannot reach the database (ECONNREFUSED)');
});
