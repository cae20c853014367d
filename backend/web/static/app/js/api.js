// The public API, as the OpenAPI document describes it. The access token lives in memory only; the refresh
// token in IndexedDB. A 401 refreshes once and retries; a refused refresh means a nurse signed this phone out.

import { kv } from "./store.js";

export class Offline extends Error {}

export class Revoked extends Error {}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

let accessToken = null;
let refreshing = null;

export function newKey() {
  return crypto.randomUUID();
}

async function call(method, path, { body, key, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new Offline("no connection");
  }
}

async function parsed(response) {
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

async function keepTokens(pair) {
  accessToken = pair.access_token;
  // The next refresh's Idempotency-Key is kept with its token: a retry after a lost answer gets the same pair.
  await kv.set("refresh", { token: pair.refresh_token, key: newKey() });
}

export async function hasSession() {
  return Boolean(await kv.get("refresh"));
}

export async function forget() {
  accessToken = null;
  await kv.remove("refresh");
}

export async function activate(code, deviceName) {
  const response = await call("POST", "/api/v1/app/activate", {
    body: { code, device_name: deviceName.slice(0, 80) },
    key: newKey(),
  });
  await keepTokens(await parsed(response));
}

function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const stored = await kv.get("refresh");
      if (!stored) throw new Revoked("no session");
      const response = await call("POST", "/api/v1/app/token/refresh", {
        body: { refresh_token: stored.token },
        key: stored.key,
      });
      if (response.status === 401 || response.status === 403) {
        const data = await response.json().catch(() => null);
        await forget();
        throw new Revoked((data && data.message) || "signed out");
      }
      await keepTokens(await parsed(response));
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// One API call as the signed-in participant.
export async function request(method, path, { body, key } = {}) {
  if (!accessToken) await refresh();
  let response = await call(method, path, { body, key, token: accessToken });
  if (response.status === 401) {
    accessToken = null;
    await refresh();
    response = await call(method, path, { body, key, token: accessToken });
    if (response.status === 401) {
      await forget();
      throw new Revoked("signed out");
    }
  }
  return parsed(response);
}

export async function signOut() {
  try {
    await request("POST", "/api/v1/app/sign-out", { key: newKey() });
  } finally {
    await forget();
  }
}
