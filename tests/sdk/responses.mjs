// tests/sdk/responses.mjs - drive Tollgate's POST /v1/responses with the
// official OpenAI SDK: a non-streamed and a streamed response, a function
// call round trip (streamed and not), and a bad key.
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

const tools = [{
  type: "function",
  name: "get_weather",
  description: "Weather forecast for a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "integer" } },
    required: ["city", "days"],
    additionalProperties: false,
  },
  strict: true,
}];
const ask = [{ role: "user", content: "What is the weather in Paris?" }];

// The function call in response <r>, checked, and the follow-up input that
// answers it.
function answerCall(r) {
  const calls = r.output.filter((o) => o.type === "function_call");
  assert(calls.length === 1, `${calls.length} function calls`);
  const call = calls[0];
  assert(call.name === "get_weather", `called ${call.name}`);
  assert(call.call_id && call.status === "completed", "call without call_id or not completed");
  const args = JSON.parse(call.arguments);
  assert(args.city === "Paris" && args.days === 3, `arguments ${call.arguments}`);
  return [...ask, call, {
    type: "function_call_output",
    call_id: call.call_id,
    output: JSON.stringify({ temp_c: 21, sky: "clear" }),
  }];
}

await check("openai sdk: function call round trip", async () => {
  const r = await openai.responses.create({ model: "gpt-4o", input: ask, tools });
  assert(r.output_text === "", "text beside the call");
  const r2 = await openai.responses.create({ model: "gpt-4o", input: answerCall(r), tools });
  assert(r2.output[0].type === "message", `output ${r2.output[0].type}`);
  assert(r2.output_text.length > 0, "no text after the function call output");
});

await check("openai sdk: streamed function call round trip", async () => {
  const stream = openai.responses.stream({ model: "gpt-4o", input: ask, tools });
  let deltas = 0, args = "", snapshot = null, done = null;
  stream.on("response.function_call_arguments.delta", (ev) => {
    deltas++;
    args += ev.delta;
    snapshot = ev.snapshot;
  });
  stream.on("response.function_call_arguments.done", (ev) => { done = ev.arguments; });
  const r = await stream.finalResponse();
  assert(deltas > 1, `only ${deltas} argument deltas`);
  assert(snapshot === args && done === args, "argument deltas do not add up");
  const input = answerCall(r);
  assert(input[1].arguments === args, "the call's arguments differ from the deltas");
  const s2 = await openai.responses.create({ model: "gpt-4o", input, tools, stream: true });
  let text = "", final = null;
  for await (const ev of s2) {
    assert(!ev.type.startsWith("response.function_call"), `${ev.type} after the output`);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") final = ev.response;
  }
  assert(final !== null && text.length > 0, "no streamed text");
  assert(final.output[0].content[0].text === text, "text deltas do not add up");
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
