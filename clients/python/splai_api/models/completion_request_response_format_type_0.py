from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.completion_request_response_format_type_0_type import CompletionRequestResponseFormatType0Type






T = TypeVar("T", bound="CompletionRequestResponseFormatType0")



@_attrs_define
class CompletionRequestResponseFormatType0:
    """ 
        Attributes:
            type_ (CompletionRequestResponseFormatType0Type):
     """

    type_: CompletionRequestResponseFormatType0Type





    def to_dict(self) -> dict[str, Any]:
        type_ = self.type_.value


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "type": type_,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        type_ = CompletionRequestResponseFormatType0Type(d.pop("type"))




        completion_request_response_format_type_0 = cls(
            type_=type_,
        )

        return completion_request_response_format_type_0

