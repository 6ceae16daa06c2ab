// tests/sdk/responses.mjs - drive Tollgate's POST /v1/responses with the
// official OpenAI SDK: a non-streamed and a streamed response, and a bad
// key.
//
// usage: node responses.mjs BASE_URL CLIENT_KEY
// Prints one line per check and exits non-zero if any failed.
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
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

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const input = "Hello from the SDK";

await check("openai sdk: non-streamed response", async () => {
  const r = await openai.responses.create({ model: "gpt-4o", input });
  assert(r.object === "response", `object ${r.object}`);
  assert(r.status === "completed", `status ${r.status}`);
  assert(r.output_text.length > 0, "no output_text");
  assert(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, "no usage");
  assert(r.usage.output_tokens_details.reasoning_tokens >= 0, "no reasoning");
});

await check("openai sdk: streamed response", async () => {
  const stream = await openai.responses.create({ model: "gpt-4o", input, stream: true });
  let deltas = 0, text = "", done = null;
  const types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") {
      deltas++;
      text += ev.delta;
    }
    if (ev.type === "response.completed") done = ev.response;
  }
  assert(types[0] === "response.created", `first event ${types[0]}`);
  assert(deltas > 1, `only ${deltas} text deltas`);
  assert(done !== null, "no response.completed");
  assert(done.output[0].content[0].text === text, "deltas do not add up to the text");
  assert(done.usage.output_tokens > 0, "no output usage");
});

await check("openai sdk: streamed response helper", async () => {
  const stream = openai.responses.stream({ model: "gpt-4o", input });
  const r = await stream.finalResponse();
  assert(r.output_text.length > 0, "no output_text");
});

await check("openai sdk: bad key on responses is an AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: "tg-wrong-key-000000000", maxRetries: 0 });
  try {
    await bad.responses.create({ model: "gpt-4o", input });
  } catch (e) {
    assert(e instanceof OpenAI.AuthenticationError, `got ${e.constructor.name}`);
    assert(e.status === 401, `status ${e.status}`);
    return;
  }
  throw new Error("bad key accepted");
});

process.exit(failed ? 1 : 0);
