"""Generation: synthetic labelled observations from an LLM. `plan` says what a run will do and what it
costs, `runs` starts, resumes and cancels it, `engine` makes the calls (bounded concurrency, retries,
parsing, dedupe) inside the background `job`. `connections`, `client` and `embedded_server` reach the
model; `prompts` renders templates; `preview` is Prompt Studio's single call.
"""
