// tests/sdk/errors.mjs - upstream errors as the official Anthropic SDK sees
// them through Tollgate, with one upstream endpoint (the mock).
//
// usage: node errors.mjs BASE_URL CLIENT_KEY MOCK_URL
// Sets the mock's fault between checks (POST MOCK_URL/_mock/fault) and
// counts what reached it (GET MOCK_URL/_mock/stats).  Prints one line per
// check and exits non-zero if any failed.
import Anthropic from "@anthropic-ai/sdk";

const [base, key, mock] = process.argv.slice(2);
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function fault(spec) {
  const r = await fetch(`${mock}/_mock/fault`, { method: "POST", body: spec });
  assert(r.ok, `setting fault ${spec}: ${r.status}`);
}

async function reached() {
  const r = await fetch(`${mock}/_mock/stats`);
  return (await r.json()).paths["/v1/messages"];
}

const messages = [{ role: "user", content: "Hello from the SDK" }];
const clients = {
  "default retries": new Anthropic({ baseURL: base, apiKey: key }),
  "retries off": new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 }),
};

function ask(client) {
  return client.messages.create({ model: "claude-opus-4-5", max_tokens: 16, messages });
}

// The error a request ends with, or null when it succeeded.
async function outcome(client) {
  try {
    await ask(client);
    return null;
  } catch (e) {
    return e;
  }
}

for (const [mode, client] of Object.entries(clients)) {
  const retries = mode === "default retries";

  await check(`${mode}: 529 once, then the next request reaches the upstream`, async () => {
    await fault("529*1");
    const before = await reached();
    const e = await outcome(client);
    if (retries) {
      assert(e === null, `the SDK's retry failed: ${e}`);
    } else {
      assert(e instanceof Anthropic.OverloadedError && e.status === 529,
             `got ${e && e.constructor.name} ${e && e.status}`);
      const next = await outcome(client);
      assert(next === null, `the request after a single 529 failed: ${next}`);
    }
    const n = (await reached()) - before;
    assert(n === 2, `the upstream saw ${n} requests, expected 2`);
  });

  await check(`${mode}: an upstream that always answers 529 ends as OverloadedError, request after request`, async () => {
    await fault("529");
    const before = await reached();
    for (let i = 0; i < 3; i++) {
      const e = await outcome(client);
      assert(e instanceof Anthropic.OverloadedError && e.status === 529,
             `request ${i + 1}: got ${e && e.constructor.name} ${e && e.status} ${e && e.message}`);
      assert(e.error && e.error.error && e.error.error.type === "overloaded_error",
             `request ${i + 1}: error type ${JSON.stringify(e.error)}`);
    }
    const n = (await reached()) - before;
    const want = retries ? 9 : 3;
    assert(n === want, `the upstream saw ${n} requests, expected ${want}`);
  });

  await check(`${mode}: an upstream that always answers 429 ends as RateLimitError with retry-after`, async () => {
    await fault("429:1");
    for (let i = 0; i < (retries ? 1 : 3); i++) {
      const e = await outcome(client);
      assert(e instanceof Anthropic.RateLimitError && e.status === 429,
             `request ${i + 1}: got ${e && e.constructor.name} ${e && e.status}`);
      const ra = e.headers && (e.headers.get ? e.headers.get("retry-after") : e.headers["retry-after"]);
      assert(ra === "1", `request ${i + 1}: retry-after ${ra}`);
    }
  });
}

await fault("none");
process.exit(failed ? 1 : 0);
