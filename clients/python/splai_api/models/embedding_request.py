from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="EmbeddingRequest")



@_attrs_define
class EmbeddingRequest:
    """ 
        Attributes:
            input_ (list[str] | str):
            model (str | Unset):
     """

    input_: list[str] | str
    model: str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        input_: list[str] | str
        if isinstance(self.input_, list):
            input_ = self.input_


        else:
            input_ = self.input_

        model = self.model


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "input": input_,
        })
        if model is not UNSET:
            field_dict["model"] = model

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_input_(data: object) -> list[str] | str:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                input_type_1 = cast(list[str], data)

                return input_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | str, data)

        input_ = _parse_input_(d.pop("input"))


        model = d.pop("model", UNSET)

        embedding_request = cls(
            input_=input_,
            model=model,
        )

        return embedding_request

