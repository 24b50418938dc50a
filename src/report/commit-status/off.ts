/** Reporting turned off (and the reporter for tests that only watch the plan): posts nothing. */
import { checkStatus } from './host.js';
import type { CommitStatus, CommitStatusReporter, PostResult } from './reporter.js';

export class OffReporter implements CommitStatusReporter {
  readonly host = 'off' as const;
  readonly maxDescription = 140;

  async post(s: CommitStatus): Promise<PostResult> {
    checkStatus(s);
    return { host: this.host, outcome: 'unchanged', httpStatus: 0 };
  }
}
