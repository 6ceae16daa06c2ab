// tests/sdk/translate.mjs - drive Tollgate with one official SDK against
// endpoints of the other API style: the OpenAI client served by Anthropic
// endpoints, or the Anthropic client served by OpenAI endpoints.  Text,
// streams, and an agent loop (tool call, tool result, answer), streamed.
//
// usage: node translate.mjs BASE_URL CLIENT_KEY openai|anthropic
//   (the SDK to run: "openai" expects Anthropic endpoints behind Tollgate,
//   "anthropic" OpenAI ones)
// Prints one line per check and exits non-zero if any failed.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [base, key, sdk] = process.argv.slice(2);
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

const ARGS = { city: "Paris", days: 3 };

async function openaiChecks() {
  const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
  const tools = [{
    type: "function",
    function: {
      name: "weather", description: "the weather",
      parameters: { type: "object", properties: { city: { type: "string" } } },
    },
  }];
  const messages = [{ role: "user", content: "Weather in Paris?" }];

  await check("openai sdk on anthropic: non-streamed text", async () => {
    const r = await openai.chat.completions.create({
      model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Hi" }],
    });
    assert(r.object === "chat.completion", `object ${r.object}`);
    assert(r.choices[0].message.content.length > 0, "no content");
    assert(r.choices[0].finish_reason === "stop", `finish ${r.choices[0].finish_reason}`);
    assert(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, "no usage");
  });

  await check("openai sdk on anthropic: streamed agent loop with tools", async () => {
    const stream = openai.chat.completions.stream({
      model: "claude-sonnet-4-5", messages, tools,
      stream_options: { include_usage: true },
    });
    const done = await stream.finalChatCompletion();
    const msg = done.choices[0].message;
    assert(done.choices[0].finish_reason === "tool_calls",
           `finish ${done.choices[0].finish_reason}`);
    assert(msg.tool_calls && msg.tool_calls.length === 1, "no tool call");
    const call = msg.tool_calls[0];
    assert(call.function.name === "weather", `name ${call.function.name}`);
    assert(JSON.stringify(JSON.parse(call.function.arguments)) === JSON.stringify(ARGS),
           `arguments ${call.function.arguments}`);
    const next = await openai.chat.completions.create({
      model: "claude-sonnet-4-5", tools, stream: true,
      messages: [...messages, msg,
                 { role: "tool", tool_call_id: call.id, content: "sunny, 21 C" }],
    });
    let text = "", finish = null;
    for await (const c of next) {
      if (c.choices.length > 0) {
        text += c.choices[0].delta.content || "";
        finish = c.choices[0].finish_reason || finish;
      }
    }
    assert(text.length > 0, "no answer after the tool result");
    assert(finish === "stop", `finish ${finish}`);
  });

  await check("openai sdk on anthropic: upstream 429 is a RateLimitError", async () => {
    try {
      await openai.chat.completions.create(
        { model: "claude-sonnet-4-5", messages },
        { headers: { "x-mock-fault": "429" } });
    } catch (e) {
      assert(e instanceof OpenAI.RateLimitError, `got ${e.constructor.name}`);
      return;
    }
    throw new Error("no error");
  });
}

async function anthropicChecks() {
  const anthropic = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 });
  const tools = [{
    name: "weather", description: "the weather",
    input_schema: { type: "object", properties: { city: { type: "string" } } },
  }];
  const messages = [{ role: "user", content: "Weather in Paris?" }];

  await check("anthropic sdk on openai: non-streamed text", async () => {
    const m = await anthropic.messages.create({
      model: "gpt-4o", max_tokens: 64, system: "Be brief.",
      messages: [{ role: "user", content: "Hi" }],
    });
    assert(m.type === "message", `type ${m.type}`);
    assert(m.content[0].type === "text" && m.content[0].text.length > 0, "no text");
    assert(m.stop_reason === "end_turn", `stop_reason ${m.stop_reason}`);
    assert(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, "no usage");
  });

  await check("anthropic sdk on openai: streamed agent loop with tools", async () => {
    const stream = anthropic.messages.stream({
      model: "gpt-4o", max_tokens: 256, messages, tools,
    });
    const m = await stream.finalMessage();
    assert(m.stop_reason === "tool_use", `stop_reason ${m.stop_reason}`);
    const use = m.content.find((b) => b.type === "tool_use");
    assert(use && use.name === "weather", "no tool_use block");
    assert(JSON.stringify(use.input) === JSON.stringify(ARGS),
           `input ${JSON.stringify(use.input)}`);
    assert(m.usage.output_tokens > 0, "no output usage");
    const next = anthropic.messages.stream({
      model: "gpt-4o", max_tokens: 256, tools,
      messages: [...messages, { role: "assistant", content: m.content },
                 { role: "user", content: [{ type: "tool_result", tool_use_id: use.id,
                                             content: "sunny, 21 C" }] }],
    });
    let deltas = 0;
    next.on("text", () => deltas++);
    const answer = await next.finalMessage();
    assert(deltas > 1, `only ${deltas} text deltas`);
    assert(answer.stop_reason === "end_turn", `stop_reason ${answer.stop_reason}`);
    assert(answer.usage.input_tokens > 0, "no input usage in message_delta");
  });

  await check("anthropic sdk on openai: upstream 429 is a RateLimitError", async () => {
    try {
      await anthropic.messages.create(
        { model: "gpt-4o", max_tokens: 8, messages },
        { headers: { "x-mock-fault": "429" } });
    } catch (e) {
      assert(e instanceof Anthropic.RateLimitError, `got ${e.constructor.name}`);
      return;
    }
    throw new Error("no error");
  });
}

if (sdk === "openai") {
  await openaiChecks();
} else if (sdk === "anthropic") {
  await anthropicChecks();
} else {
  console.log("usage: node translate.mjs BASE_URL CLIENT_KEY openai|anthropic");
  process.exit(2);
}
process.exit(failed ? 1 : 0);
