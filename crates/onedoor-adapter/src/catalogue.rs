//! The service catalogue as agencies see it: `ListServices`, and the route step an inbox item
//! is about.

use onedoor_case::{AgencyCode, Registry, Service};
use onedoor_proto::v1;

/// Every service of the registry, by code, with its route and whether the route is strict.
pub fn list_services(registry: &Registry) -> v1::ListServicesResponse {
    v1::ListServicesResponse {
        services: registry.services.values().map(service).collect(),
    }
}

fn service(service: &Service) -> v1::CatalogueService {
    v1::CatalogueService {
        code: service.code.to_string(),
        name_en: service.name_en.clone(),
        name_lo: service.name_lo.clone(),
        stages: service
            .route
            .iter()
            .enumerate()
            .map(|(index, stage)| v1::RouteStage {
                steps: stage
                    .steps
                    .iter()
                    .map(|step| route_step(step, index))
                    .collect(),
            })
            .collect(),
        strict_route: service.strict_route,
    }
}

fn route_step(step: &onedoor_case::Step, stage_index: usize) -> v1::RouteStep {
    v1::RouteStep {
        agencies: step
            .agency
            .codes()
            .iter()
            .map(ToString::to_string)
            .collect(),
        purpose_en: step.purpose_en.clone(),
        purpose_lo: step.purpose_lo.clone(),
        working_days: step.working_days,
        stage: u32::try_from(stage_index + 1).unwrap_or(u32::MAX),
    }
}

/// The first step of `service`'s route that `agency` performs, as the wire shows it.
pub fn step_of(service: &Service, agency: &AgencyCode) -> Option<v1::RouteStep> {
    service.route.iter().enumerate().find_map(|(index, stage)| {
        stage
            .steps
            .iter()
            .find(|step| step.agency.admits(agency))
            .map(|step| route_step(step, index))
    })
}
