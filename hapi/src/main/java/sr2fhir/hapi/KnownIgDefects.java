package sr2fhir.hapi;

import ca.uhn.fhir.validation.IValidationContext;
import ca.uhn.fhir.validation.IValidatorModule;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * Validation, with the errors that come from defects of the IG itself (not of the instance)
 * reported as warnings. The defects are read from sr2fhir's one list,
 * {@code src/sr2fhir/known_ig_defects.json} (system property {@code sr2fhir.knownIgDefects}), which
 * sr2fhir's own validator and the official-validator check in CI read too (docs/conformance.md).
 * Every other error still refuses the request.
 */
final class KnownIgDefects implements IValidatorModule {
    private final IValidatorModule delegate;
    private final List<String> messages;

    KnownIgDefects(IValidatorModule delegate, Path list) throws IOException {
        this.delegate = delegate;
        this.messages = load(list);
        System.out.println("sr2fhir-hapi: " + messages.size() + " known IG defect message(s) from " + list);
    }

    static List<String> load(Path list) throws IOException {
        List<String> out = new ArrayList<>();
        JsonNode root = new ObjectMapper().readTree(list.toFile());
        for (JsonNode defect : root.path("defects")) {
            for (JsonNode m : defect.path("messages")) {
                out.add(m.asText());
            }
        }
        return out;
    }

    @Override
    public void validateResource(IValidationContext<IBaseResource> ctx) {
        delegate.validateResource(ctx);
        for (SingleValidationMessage m : ctx.getMessages()) {
            if (m.getSeverity() == ResultSeverityEnum.ERROR && m.getMessage() != null && messages.stream().anyMatch(m.getMessage()::contains)) {
                m.setSeverity(ResultSeverityEnum.WARNING);
            }
        }
    }
}
