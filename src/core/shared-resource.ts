export interface Closable {
  close(): Promise<void>;
}

export interface Lease<T> {
  readonly resource: T;
  /** Leaves; the last one out closes the resource, and the promise waits for that teardown. */
  release(): Promise<void>;
}

/**
 * A reference-counted resource: created with the first user, closed after the last leaves. A user
 * arriving while a teardown runs waits for it, so a redeploy cannot race the old connection.
 */
export class SharedResource<T extends Closable> {
  private current?: T;
  private users = new Set<object>();
  private teardown: Promise<void> = Promise.resolve();

  constructor(private readonly create: () => T) {}

  get userCount(): number {
    return this.users.size;
  }

  async acquire(user: object): Promise<Lease<T>> {
    await this.teardown;
    if (!this.current) this.current = this.create();
    const resource = this.current;
    this.users.add(user);
    let released = false;
    return {
      resource,
      release: async () => {
        if (released) return this.teardown;
        released = true;
        this.users.delete(user);
        if (this.users.size === 0 && this.current === resource) {
          this.current = undefined;
          this.teardown = resource.close().catch(() => undefined);
        }
        return this.teardown;
      },
    };
  }
}
