// The REST API client of both front ends: the bearer token, JSON in and out,
// and the API's one error format turned into ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api extends EventTarget {
  /** ``storageKey``: where this front end keeps its token (the CMS and the panel sign in apart). */
  constructor(storageKey) {
    super();
    this.storageKey = storageKey;
  }

  get token() {
    return localStorage.getItem(this.storageKey);
  }

  set token(value) {
    if (value) localStorage.setItem(this.storageKey, value);
    else localStorage.removeItem(this.storageKey);
  }

  /** ``headers``: extra request headers, e.g. an ``Idempotency-Key``. */
  async request(method, path, body, { headers: extra = {} } = {}) {
    const headers = { Accept: 'application/json', ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = data?.error || {};
      const failure = new ApiError(
        response.status,
        error.code || 'http_error',
        error.message || `The server answered ${response.status}.`,
      );
      if (response.status === 401 && path !== '/api/auth/login') {
        this.dispatchEvent(new CustomEvent('unauthorized', { detail: failure }));
      }
      throw failure;
    }
    return data;
  }

  get(path, query) {
    return this.request('GET', withQuery(path, query));
  }

  post(path, body = {}, options = {}) {
    return this.request('POST', path, body, options);
  }

  put(path, body) {
    return this.request('PUT', path, body);
  }

  delete(path) {
    return this.request('DELETE', path);
  }

  /** Every item of a paginated list (``{"items", "next"}``), following ``next``. */
  async all(path, query = {}, { max = 2000 } = {}) {
    const items = [];
    let cursor = null;
    do {
      const page = await this.get(path, { ...query, limit: 200, cursor });
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < max);
    return items;
  }
}

/** A new random key for one intent (an ``Idempotency-Key``), also on plain-HTTP pages. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}
