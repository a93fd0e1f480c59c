"""Kubernetes' `$(VAR)` expansion in env values, command and args (kubelet's `expansion.Expand`).

`$(NAME)` becomes NAME's value when it is defined and stays as written when it is not; `$$` is a literal `$`;
any other `$` is kept as is.
"""

from __future__ import annotations

from collections.abc import Mapping


def expand(text: str, defined: Mapping[str, str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 == n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            end = text.find(")", i + 2)
            if end == -1:  # an unclosed reference is kept literally
                out.append(text[i:])
                break
            name = text[i + 2:end]
            out.append(defined[name] if name in defined else text[i:end + 1])
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)
