import { checkStac, describeStac } from "../../core/stac";

/** What one warning about an Item that failed the STAC check says. */
export interface InvalidItemReport {
  /** The Item described in a few words (not cut: cut it after redacting). */
  what: string;
  eventId: string;
  problems: string;
  /** Failed Items not reported since the previous warning. */
  more: number;
}

/**
 * subscribe-in's STAC check: the problems of an Item (none when it passes), and their warnings, at
 * most one a second, each counting those it did not show.
 */
export class StacCheckWarnings {
  private warnedAt = 0;
  private suppressed = 0;

  constructor(private readonly warn: (report: InvalidItemReport) => void) {}

  problemsOf(item: Record<string, unknown>): string[] {
    const check = checkStac(item);
    return check.kind === "Item" || check.problems.length > 0 ? check.problems : [`not an Item (a ${check.kind})`];
  }

  report(item: Record<string, unknown>, problems: string[], eventId: string | undefined, now = Date.now()): void {
    if (now - this.warnedAt < 1000) {
      this.suppressed += 1;
      return;
    }
    this.warnedAt = now;
    const more = this.suppressed;
    this.suppressed = 0;
    this.warn({ what: describeStac(item), eventId: eventId ?? "-", problems: problems.slice(0, 5).join("; "), more });
  }
}
