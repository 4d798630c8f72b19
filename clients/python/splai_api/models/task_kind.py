from enum import StrEnum

class TaskKind(StrEnum):
    AGGREGATION = "aggregation"
    EMBEDDING = "embedding"
    LLM_INFERENCE = "llm_inference"
    TOOL_EXECUTION = "tool_execution"

    def __str__(self) -> str:
        return str(self.value)
