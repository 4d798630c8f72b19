from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.data_classification import DataClassification
from ..models.job_type_type_0 import JobTypeType0
from ..models.priority import Priority
from ..types import UNSET, Unset
from typing import cast
from typing import Literal, cast

if TYPE_CHECKING:
  from ..models.dag import Dag





T = TypeVar("T", bound="JobRequest")



@_attrs_define
class JobRequest:
    """ A job submission, produced to the `jobs` topic by the gateway or by any Kafka producer.

    The tenant is the envelope's `tenant`; it is not repeated here.

        Attributes:
            type_ (JobTypeType0 | Literal['auto']):
            cache (bool | None | Unset): `false`: no task of this job reuses an earlier output or offers its own for reuse
                (see
                [`TaskSpec::cache`]).
            dag (Dag | None | Unset): Explicit DAG; required when `type` is `explicit`.
            data_classification (DataClassification | Unset):
            idempotency_key (None | str | Unset): Same key and same tenant ⇒ same job; a different request with a used key
                is a conflict.
            input_ (Any | Unset): Free-form input of the template (text, chunks, messages...).
            job_id (None | str | Unset): Job id. When absent, the envelope `id` is the job id.
            max_retries (int | None | Unset): Retries per task unless a task overrides it.
            model (None | str | Unset): Model name for inference tasks; the worker's default when absent.
            policy (None | str | Unset): Name of the policy set to evaluate; the tenant default when absent.
            priority (Priority | Unset): Scheduling class; `Interactive` goes before `Standard` before `Batch`.
            timeout_s (int | None | Unset): Job deadline in seconds from admission (at most a week).
     """

    type_: JobTypeType0 | Literal['auto']
    cache: bool | None | Unset = UNSET
    dag: Dag | None | Unset = UNSET
    data_classification: DataClassification | Unset = UNSET
    idempotency_key: None | str | Unset = UNSET
    input_: Any | Unset = UNSET
    job_id: None | str | Unset = UNSET
    max_retries: int | None | Unset = UNSET
    model: None | str | Unset = UNSET
    policy: None | str | Unset = UNSET
    priority: Priority | Unset = UNSET
    timeout_s: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.dag import Dag # noqa: PLC0415
        type_: Literal['auto'] | str
        if isinstance(self.type_, JobTypeType0):
            type_ = self.type_.value
        else:
            type_ = self.type_

        cache: bool | None | Unset
        if isinstance(self.cache, Unset):
            cache = UNSET
        else:
            cache = self.cache

        dag: dict[str, Any] | None | Unset
        if isinstance(self.dag, Unset):
            dag = UNSET
        elif isinstance(self.dag, Dag):
            dag = self.dag.to_dict()
        else:
            dag = self.dag

        data_classification: str | Unset = UNSET
        if not isinstance(self.data_classification, Unset):
            data_classification = self.data_classification.value


        idempotency_key: None | str | Unset
        if isinstance(self.idempotency_key, Unset):
            idempotency_key = UNSET
        else:
            idempotency_key = self.idempotency_key

        input_ = self.input_

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id

        max_retries: int | None | Unset
        if isinstance(self.max_retries, Unset):
            max_retries = UNSET
        else:
            max_retries = self.max_retries

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        policy: None | str | Unset
        if isinstance(self.policy, Unset):
            policy = UNSET
        else:
            policy = self.policy

        priority: str | Unset = UNSET
        if not isinstance(self.priority, Unset):
            priority = self.priority.value


        timeout_s: int | None | Unset
        if isinstance(self.timeout_s, Unset):
            timeout_s = UNSET
        else:
            timeout_s = self.timeout_s


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "type": type_,
        })
        if cache is not UNSET:
            field_dict["cache"] = cache
        if dag is not UNSET:
            field_dict["dag"] = dag
        if data_classification is not UNSET:
            field_dict["data_classification"] = data_classification
        if idempotency_key is not UNSET:
            field_dict["idempotency_key"] = idempotency_key
        if input_ is not UNSET:
            field_dict["input"] = input_
        if job_id is not UNSET:
            field_dict["job_id"] = job_id
        if max_retries is not UNSET:
            field_dict["max_retries"] = max_retries
        if model is not UNSET:
            field_dict["model"] = model
        if policy is not UNSET:
            field_dict["policy"] = policy
        if priority is not UNSET:
            field_dict["priority"] = priority
        if timeout_s is not UNSET:
            field_dict["timeout_s"] = timeout_s

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dag import Dag # noqa: PLC0415
        d = dict(src_dict)
        def _parse_type_(data: object) -> JobTypeType0 | Literal['auto']:
            try:
                if not isinstance(data, str):
                    raise TypeError()
                componentsschemas_job_type_type_0 = JobTypeType0(data)



                return componentsschemas_job_type_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            componentsschemas_job_type_type_1 = cast(Literal['auto'] , data)
            if componentsschemas_job_type_type_1 != 'auto':
                raise ValueError(f"/components/schemas/JobType_type_1 must match const 'auto', got '{componentsschemas_job_type_type_1}'")
            return componentsschemas_job_type_type_1

        type_ = _parse_type_(d.pop("type"))


        def _parse_cache(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        cache = _parse_cache(d.pop("cache", UNSET))


        def _parse_dag(data: object) -> Dag | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                dag_type_0 = Dag.from_dict(data)



                return dag_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(Dag | None | Unset, data)

        dag = _parse_dag(d.pop("dag", UNSET))


        _data_classification = d.pop("data_classification", UNSET)
        data_classification: DataClassification | Unset
        if isinstance(_data_classification,  Unset):
            data_classification = UNSET
        else:
            data_classification = DataClassification(_data_classification)




        def _parse_idempotency_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        idempotency_key = _parse_idempotency_key(d.pop("idempotency_key", UNSET))


        input_ = d.pop("input", UNSET)

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))


        def _parse_max_retries(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_retries = _parse_max_retries(d.pop("max_retries", UNSET))


        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))


        def _parse_policy(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        policy = _parse_policy(d.pop("policy", UNSET))


        _priority = d.pop("priority", UNSET)
        priority: Priority | Unset
        if isinstance(_priority,  Unset):
            priority = UNSET
        else:
            priority = Priority(_priority)




        def _parse_timeout_s(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        timeout_s = _parse_timeout_s(d.pop("timeout_s", UNSET))


        job_request = cls(
            type_=type_,
            cache=cache,
            dag=dag,
            data_classification=data_classification,
            idempotency_key=idempotency_key,
            input_=input_,
            job_id=job_id,
            max_retries=max_retries,
            model=model,
            policy=policy,
            priority=priority,
            timeout_s=timeout_s,
        )

        return job_request

