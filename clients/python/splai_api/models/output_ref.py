from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="OutputRef")



@_attrs_define
class OutputRef:
    """ A reference to a parent's output, optionally narrowed by a JSON pointer (RFC 6901).

        Attributes:
            task (str):
            pointer (None | str | Unset):
     """

    task: str
    pointer: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        task = self.task

        pointer: None | str | Unset
        if isinstance(self.pointer, Unset):
            pointer = UNSET
        else:
            pointer = self.pointer


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "task": task,
        })
        if pointer is not UNSET:
            field_dict["pointer"] = pointer

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        task = d.pop("task")

        def _parse_pointer(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        pointer = _parse_pointer(d.pop("pointer", UNSET))


        output_ref = cls(
            task=task,
            pointer=pointer,
        )

        return output_ref

