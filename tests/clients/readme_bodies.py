"""Writes a TypeScript file that types every request body README.md's curl block sends.

Each `curl ... -d '<json>' $K<path>` line of the block marked `readme-test` becomes a constant
typed as that operation's request body in the types openapi-typescript generated (api.d.ts), so
`tsc --noEmit` proves the README's bodies fit the document as generated clients see it. A line
whose expected status is 4xx is a deliberate mistake: it gets `// @ts-expect-error`, so the types
must catch it too. Shell variables inside a body (`"'$SPACE'"`) stand for ids.

    python readme_bodies.py README.md openapi.json > bodies.ts
"""

import json
import re
import sys

readme, document_path = sys.argv[1], sys.argv[2]
document = json.load(open(document_path))
text = open(readme).read()
block = text.split("<!-- readme-test: the block below runs in CI -->", 1)[1].split("```sh", 1)[1].split("```", 1)[0]


def operation_for(method: str, path: str) -> str:
    """The operationId whose path template matches `path`."""
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method in item:
            return item[method]["operationId"]
    raise SystemExit(f"no operation for {method.upper()} {path}")


print('import type { operations } from "./api";')
print('type Body<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;')
count = 0
for line in block.splitlines():
    body = re.search(r"-d '(.*?)' \$K", line)
    if body is None:
        continue
    method = re.search(r"-X (\w+)", line)
    method = method.group(1).lower() if method else "post"
    path = re.search(r"\$K(/[^ \")]*)", line).group(1).split("?")[0]
    path = re.sub(r"\$[A-Z]+", "x", path)
    operation = operation_for(method, path)
    # '"'$SPACE'"' closes the shell quote, expands, reopens: in the JSON it is an id.
    json_text = re.sub(r"'\$[A-Z]+'", "01a21edd-ac5f-72f8-b787-6978fc0828c8", body.group(1))
    value = json.loads(json_text)
    expected = re.search(r"#\s*(\d{3})\s*$", line)
    count += 1
    if expected and expected.group(1).startswith("4"):
        print(f"// README expects {expected.group(1)}: the types must refuse it too.")
        print("// @ts-expect-error")
    print(f"export const body{count}: Body<{json.dumps(operation)}> = {json.dumps(value)};")
# The last page of a list has neither `Link` nor `Next-Cursor`: both must be optional.
print('export const lastPage: Pick<operations["listTasks"]["responses"][200]["headers"], "Link" | "Next-Cursor"> = {};')
if count < 5:
    raise SystemExit(f"only {count} bodies found in the README block")
print(f"// {count} bodies", file=sys.stderr)
