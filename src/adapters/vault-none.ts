import type { VaultPort } from '../ports/vault.js';

/**
 * No vault (store kind memory): nothing is kept, so nothing can be served from it or restored.
 * `keep` succeeds without storing — the explicit opt-out of issue 18, for tests and for
 * deployments whose provider keeps its own history.
 */
export function createNoVault(): VaultPort {
  return {
    keep: async () => '',
    link: async () => {},
    version: async () => undefined,
    history: async () => [],
    all: async function* () {},
    purge: async () => 0,
    ping: async () => {},
    close: async () => {},
  };
}
