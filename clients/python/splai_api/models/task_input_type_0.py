from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="TaskInputType0")



@_attrs_define
class TaskInputType0:
    """ 
        Attributes:
            literal (Any):
     """

    literal: Any





    def to_dict(self) -> dict[str, Any]:
        literal = self.literal


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "literal": literal,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        literal = d.pop("literal")

        task_input_type_0 = cls(
            literal=literal,
        )

        return task_input_type_0

