from enum import StrEnum

class Priority(StrEnum):
    BATCH = "batch"
    INTERACTIVE = "interactive"
    STANDARD = "standard"

    def __str__(self) -> str:
        return str(self.value)
