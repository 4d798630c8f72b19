from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.completion_request_response_format_type_0 import CompletionRequestResponseFormatType0
  from ..models.completion_request_response_format_type_1 import CompletionRequestResponseFormatType1





T = TypeVar("T", bound="CompletionRequest")



@_attrs_define
class CompletionRequest:
    """ 
        Attributes:
            prompt (str): Runs as one user message
            max_completion_tokens (int | Unset):
            max_tokens (int | Unset):
            model (str | Unset): A model a live worker serves (`GET /v1/models`); 404 otherwise
            n (int | Unset): Only 1
            response_format (CompletionRequestResponseFormatType0 | CompletionRequestResponseFormatType1 | Unset): OpenAI's
                response_format: constrain the output to JSON, or to a JSON Schema
            seed (int | Unset):
            stop (list[str] | str | Unset):
            temperature (float | Unset):
     """

    prompt: str
    max_completion_tokens: int | Unset = UNSET
    max_tokens: int | Unset = UNSET
    model: str | Unset = UNSET
    n: int | Unset = UNSET
    response_format: CompletionRequestResponseFormatType0 | CompletionRequestResponseFormatType1 | Unset = UNSET
    seed: int | Unset = UNSET
    stop: list[str] | str | Unset = UNSET
    temperature: float | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.completion_request_response_format_type_0 import CompletionRequestResponseFormatType0 # noqa: PLC0415
        from ..models.completion_request_response_format_type_1 import CompletionRequestResponseFormatType1 # noqa: PLC0415
        prompt = self.prompt

        max_completion_tokens = self.max_completion_tokens

        max_tokens = self.max_tokens

        model = self.model

        n = self.n

        response_format: dict[str, Any] | Unset
        if isinstance(self.response_format, Unset):
            response_format = UNSET
        elif isinstance(self.response_format, CompletionRequestResponseFormatType0):
            response_format = self.response_format.to_dict()
        else:
            response_format = self.response_format.to_dict()


        seed = self.seed

        stop: list[str] | str | Unset
        if isinstance(self.stop, Unset):
            stop = UNSET
        elif isinstance(self.stop, list):
            stop = self.stop


        else:
            stop = self.stop

        temperature = self.temperature


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "prompt": prompt,
        })
        if max_completion_tokens is not UNSET:
            field_dict["max_completion_tokens"] = max_completion_tokens
        if max_tokens is not UNSET:
            field_dict["max_tokens"] = max_tokens
        if model is not UNSET:
            field_dict["model"] = model
        if n is not UNSET:
            field_dict["n"] = n
        if response_format is not UNSET:
            field_dict["response_format"] = response_format
        if seed is not UNSET:
            field_dict["seed"] = seed
        if stop is not UNSET:
            field_dict["stop"] = stop
        if temperature is not UNSET:
            field_dict["temperature"] = temperature

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.completion_request_response_format_type_0 import CompletionRequestResponseFormatType0 # noqa: PLC0415
        from ..models.completion_request_response_format_type_1 import CompletionRequestResponseFormatType1 # noqa: PLC0415
        d = dict(src_dict)
        prompt = d.pop("prompt")

        max_completion_tokens = d.pop("max_completion_tokens", UNSET)

        max_tokens = d.pop("max_tokens", UNSET)

        model = d.pop("model", UNSET)

        n = d.pop("n", UNSET)

        def _parse_response_format(data: object) -> CompletionRequestResponseFormatType0 | CompletionRequestResponseFormatType1 | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                response_format_type_0 = CompletionRequestResponseFormatType0.from_dict(data)



                return response_format_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            response_format_type_1 = CompletionRequestResponseFormatType1.from_dict(data)



            return response_format_type_1

        response_format = _parse_response_format(d.pop("response_format", UNSET))


        seed = d.pop("seed", UNSET)

        def _parse_stop(data: object) -> list[str] | str | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                stop_type_1 = cast(list[str], data)

                return stop_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | str | Unset, data)

        stop = _parse_stop(d.pop("stop", UNSET))


        temperature = d.pop("temperature", UNSET)

        completion_request = cls(
            prompt=prompt,
            max_completion_tokens=max_completion_tokens,
            max_tokens=max_tokens,
            model=model,
            n=n,
            response_format=response_format,
            seed=seed,
            stop=stop,
            temperature=temperature,
        )

        return completion_request

