"""Ask the weather agent one question and print the output items (step 5 of the guide).

Run while `ng_run` serves the example_single_tool_call environment:
    python responses_api_agents/simple_agent/client.py
"""

import asyncio
import json

from nemo_gym.server_utils import ServerClient

AGENT = "example_single_tool_call_simple_agent"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city name."}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


async def main() -> None:
    client = ServerClient.load_from_global_config()
    try:
        response = await client.post(
            server_name=AGENT,
            url_path="/v1/responses",
            json={
                "input": [
                    {"role": "developer", "content": "You are a helpful personal assistant."},
                    {"role": "user", "content": "going out in sf tn"},
                ],
                "tools": [WEATHER_TOOL],
            },
        )
        response.raise_for_status()
        output = (await response.json())["output"]
        for item in output:  # keep what the guide shows; ids vary per run
            item.pop("id", None)
        print(json.dumps(output, indent=4))
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
