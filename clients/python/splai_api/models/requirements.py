from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="Requirements")



@_attrs_define
class Requirements:
    """ What a worker must offer to run a task. `model` and `tools` are hard constraints.

        Attributes:
            cpu_slots (int | Unset): Executor slots the attempt occupies. Default: 1.
            locality (list[str] | Unset): Preferred locality labels (`key=value`); a soft preference unless a policy
                requires it.
            memory_mb (int | Unset): Memory the attempt needs, in MiB (0 = unknown). Default: 0.
            model (None | str | Unset):
            tools (list[str] | Unset):
     """

    cpu_slots: int | Unset = 1
    locality: list[str] | Unset = UNSET
    memory_mb: int | Unset = 0
    model: None | str | Unset = UNSET
    tools: list[str] | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        cpu_slots = self.cpu_slots

        locality: list[str] | Unset = UNSET
        if not isinstance(self.locality, Unset):
            locality = self.locality



        memory_mb = self.memory_mb

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        tools: list[str] | Unset = UNSET
        if not isinstance(self.tools, Unset):
            tools = self.tools




        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if cpu_slots is not UNSET:
            field_dict["cpu_slots"] = cpu_slots
        if locality is not UNSET:
            field_dict["locality"] = locality
        if memory_mb is not UNSET:
            field_dict["memory_mb"] = memory_mb
        if model is not UNSET:
            field_dict["model"] = model
        if tools is not UNSET:
            field_dict["tools"] = tools

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        cpu_slots = d.pop("cpu_slots", UNSET)

        locality = cast(list[str], d.pop("locality", UNSET))


        memory_mb = d.pop("memory_mb", UNSET)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))


        tools = cast(list[str], d.pop("tools", UNSET))


        requirements = cls(
            cpu_slots=cpu_slots,
            locality=locality,
            memory_mb=memory_mb,
            model=model,
            tools=tools,
        )

        return requirements

