import type { VaultPort } from '../ports/vault.js';

/** No vault (store.kind memory): nothing is kept; keep() succeeds at once. */
export function createNoVault(): VaultPort {
  let n = 0;
  return {
    keep: () => Promise.resolve(`none-${++n}`),
    link: () => Promise.resolve(),
    version: () => Promise.resolve(undefined),
    history: () => Promise.resolve([]),
    all: async function* () {},
    purge: () => Promise.resolve(0),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}
