"""The bare baseline: the least code that does classify -> answer with AsyncOpenAI.

One semaphore, no limiter, no retries, no escalation, no accounting; the
response parsed by the SDK as a typical script would. Used by the overhead
benchmark as the CPU floor of "the SDK doing the same calls".

    python bench/bare.py BASE_URL INPUT.jsonl [--concurrency 64] [--backend aiohttp|httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    p.add_argument("input")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--backend", choices=("aiohttp", "httpx"), default="aiohttp")
    args = p.parse_args()

    import httpx2
    import openai

    limits = httpx2.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    if args.backend == "aiohttp":
        http_client = openai.DefaultAioHttpClient(limits=limits)
    else:
        http_client = openai.DefaultAsyncHttpxClient(limits=limits)
    client = openai.AsyncOpenAI(base_url=args.base_url, api_key="bench", max_retries=0, http_client=http_client)
    sem = asyncio.Semaphore(args.concurrency)
    tiers = {"simple": "Qwen3.5-0.8B", "moderate": "Qwen3.6-35B-A3B-FP8", "complex": "Mistral-Medium-3.5-128B"}

    async def one(query: str) -> None:
        async with sem:
            r = await client.chat.completions.create(
                model="Qwen3.5-0.8B",
                messages=[{"role": "system", "content": "Classify the complexity ..."},
                          {"role": "user", "content": query}],
                temperature=0.0, max_tokens=5)
            label = (r.choices[0].message.content or "").strip().lower()
            model = tiers.get(label, tiers["moderate"])
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": query}])

    with open(args.input) as fh:
        queries = [json.loads(line)["query"] for line in fh if line.strip()]
    # bounded fan-out: a fixed number of tasks pull from one iterator
    it = iter(queries)

    async def worker() -> None:
        for q in it:
            await one(q)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
