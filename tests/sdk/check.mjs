// tests/sdk/check.mjs - drive Tollgate with the official Anthropic and
// OpenAI SDKs: non-streamed and streamed answers, and a bad key.
//
// usage: node check.mjs BASE_URL CLIENT_KEY
// Prints one line per check and exits non-zero if any failed.
import Anthropic from "@anthropic-ai/sdk";
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

const anthropic = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 });
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const messages = [{ role: "user", content: "Hello from the SDK" }];

await check("anthropic sdk: non-streamed message", async () => {
  const m = await anthropic.messages.create({
    model: "claude-opus-4-5", max_tokens: 64, messages,
  });
  assert(m.type === "message", `type ${m.type}`);
  assert(m.content.length > 0 && m.content[0].type === "text", "no text");
  assert(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, "no usage");
});

await check("anthropic sdk: streamed message", async () => {
  const stream = anthropic.messages.stream({
    model: "claude-opus-4-5", max_tokens: 64, messages,
  });
  let deltas = 0;
  stream.on("text", () => deltas++);
  const m = await stream.finalMessage();
  assert(deltas > 1, `only ${deltas} text deltas`);
  assert(m.stop_reason === "end_turn", `stop_reason ${m.stop_reason}`);
  assert(m.usage.output_tokens > 0, "no output usage");
});

await check("anthropic sdk: bad key is an AuthenticationError", async () => {
  const bad = new Anthropic({ baseURL: base, apiKey: "tg-wrong-key-000000000", maxRetries: 0 });
  try {
    await bad.messages.create({ model: "claude-opus-4-5", max_tokens: 8, messages });
  } catch (e) {
    assert(e instanceof Anthropic.AuthenticationError, `got ${e.constructor.name}`);
    return;
  }
  throw new Error("bad key accepted");
});

await check("anthropic sdk: models list", async () => {
  const page = await anthropic.models.list();
  assert(page.data.length > 0 && page.data[0].type === "model", "no models");
});

await check("openai sdk: non-streamed chat completion", async () => {
  const r = await openai.chat.completions.create({ model: "gpt-4o", messages });
  assert(r.object === "chat.completion", `object ${r.object}`);
  assert(r.choices[0].message.content.length > 0, "no content");
  assert(r.usage.total_tokens > 0, "no usage");
});

await check("openai sdk: streamed chat completion with usage", async () => {
  const stream = await openai.chat.completions.create({
    model: "gpt-4o", messages, stream: true, stream_options: { include_usage: true },
  });
  let chunks = 0, usage = null;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
  }
  assert(chunks > 2, `only ${chunks} chunks`);
  assert(usage && usage.completion_tokens > 0, "no usage chunk");
});

await check("openai sdk: bad key is an AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: "tg-wrong-key-000000000", maxRetries: 0 });
  try {
    await bad.chat.completions.create({ model: "gpt-4o", messages });
  } catch (e) {
    assert(e instanceof OpenAI.AuthenticationError, `got ${e.constructor.name}`);
    return;
  }
  throw new Error("bad key accepted");
});

process.exit(failed ? 1 : 0);
