from enum import StrEnum

class JobTypeType0(StrEnum):
    BATCH_ANALYSIS = "batch_analysis"
    CHAT = "chat"
    EMBED = "embed"
    EXPLICIT = "explicit"

    def __str__(self) -> str:
        return str(self.value)
