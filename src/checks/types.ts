import type { ReportFamily } from '../config.js';
import type { RequestContext } from '../context.js';
import type { InteractionKind } from '../standards/types.js';

/** What a check may do besides reading the context: read the body, reach the provider. */
export interface CheckIO {
  /** The request body, up to `limit` bytes; rejects with BODY_TOO_LARGE beyond it. */
  readBody(limit: number): Promise<Buffer>;
}

export interface Check {
  /** Stage name, used for timings, metrics and logs. */
  readonly name: string;
  /** Report-mode family (issue 7); null for checks that always enforce (JWT, provider read). */
  readonly family: ReportFamily | null;
  /** Skip this check when an earlier, report-mode check could not supply what it reads. */
  readonly needs?: ReadonlyArray<'resource'>;
  /** Run only for these interaction kinds (the body-only cancel rules do not apply to amend). */
  readonly only?: ReadonlyArray<InteractionKind>;
  run(ctx: RequestContext, io: CheckIO): void | Promise<void>;
}
